//! The line discipline between a pty's master and slave (Linux's `n_tty`): input
//! processing (ICRNL, INLCR, IGNCR, ISTRIP, IXON), canonical line editing (VERASE, VKILL,
//! VWERASE, VEOF, VEOL, VEOL2, VLNEXT, VREPRINT), echo (ECHO, ECHOE, ECHOK, ECHOKE,
//! ECHONL, ECHOCTL), the signal characters (ISIG), non-canonical reads (VMIN/VTIME) and
//! output processing (OPOST with ONLCR, OCRNL, ONOCR, ONLRET, OLCUC, XTABS), IUTF8 erase.
//!
//! Pure state: no locking, no waiting, no signals sent. The pty calls it under its lock
//! and acts on what it returns.
#![deny(unsafe_code)]

use std::collections::VecDeque;

/// `NCCS` of the kernel's `struct termios`.
pub const NCCS: usize = 19;
/// Linux's `N_TTY_BUF_SIZE`: the input a slave may have waiting.
pub const N_TTY_BUF_SIZE: usize = 4096;
/// Output the slave may have written that the master has not read yet.
pub const OUTPUT_MAX: usize = 65536;

/// `sizeof(struct termios)` and `sizeof(struct termios2)` as the kernel has them.
pub const TERMIOS_SIZE: usize = 36;
pub const TERMIOS2_SIZE: usize = 44;

// c_cc indices (asm-generic/termbits.h).
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VREPRINT: usize = 12;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;

const CBAUD: u32 = 0o010017;
const B38400: u32 = 0o000017;

/// The kernel's `struct termios2` (`struct termios` is its first 36 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
    pub ispeed: u32,
    pub ospeed: u32,
}

impl Default for Termios {
    /// A new pty slave's settings: Linux's `tty_std_termios` with the pty driver's
    /// `c_cflag` (B38400 | CS8 | CREAD).
    fn default() -> Termios {
        let mut cc = [0u8; NCCS];
        // INIT_C_CC: ^C ^\ DEL ^U ^D, VTIME 0, VMIN 1, ^Q ^S ^Z, ^R ^O ^W ^V.
        for (i, v) in [
            (VINTR, 0x03),
            (VQUIT, 0x1c),
            (VERASE, 0x7f),
            (VKILL, 0x15),
            (VEOF, 0x04),
            (VMIN, 1),
            (VSTART, 0x11),
            (VSTOP, 0x13),
            (VSUSP, 0x1a),
            (VREPRINT, 0x12),
            (13, 0x0f),
            (VWERASE, 0x17),
            (VLNEXT, 0x16),
        ] {
            if let Some(c) = cc.get_mut(i) {
                *c = v;
            }
        }
        Termios {
            iflag: libc::ICRNL | libc::IXON,
            oflag: libc::OPOST | libc::ONLCR,
            cflag: B38400 | libc::CS8 | libc::CREAD,
            lflag: libc::ISIG
                | libc::ICANON
                | libc::ECHO
                | libc::ECHOE
                | libc::ECHOK
                | libc::ECHOCTL
                | libc::ECHOKE
                | libc::IEXTEN,
            line: 0,
            cc,
            ispeed: 38400,
            ospeed: 38400,
        }
    }
}

/// The speed a `Bnnn` code in `c_cflag` stands for.
fn baud_of(cflag: u32) -> u32 {
    const RATES: [u32; 16] = [
        0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
    ];
    const HIGH: [u32; 15] = [
        57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000,
        2500000, 3000000, 3500000, 4000000,
    ];
    let code = cflag & CBAUD;
    if code & libc::CBAUDEX == 0 {
        RATES.get(code as usize).copied().unwrap_or(38400)
    } else {
        let i = (code & !libc::CBAUDEX) as usize;
        i.checked_sub(1)
            .and_then(|i| HIGH.get(i))
            .copied()
            .unwrap_or(38400)
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_ne_bytes(s.try_into().ok()?))
}

impl Termios {
    /// Encode as `struct termios` (36 bytes) or `struct termios2` (44).
    pub fn to_bytes(&self, termios2: bool) -> Vec<u8> {
        let mut v = Vec::with_capacity(TERMIOS2_SIZE);
        for f in [self.iflag, self.oflag, self.cflag, self.lflag] {
            v.extend_from_slice(&f.to_ne_bytes());
        }
        v.push(self.line);
        v.extend_from_slice(&self.cc);
        if termios2 {
            v.extend_from_slice(&self.ispeed.to_ne_bytes());
            v.extend_from_slice(&self.ospeed.to_ne_bytes());
        }
        v
    }

    /// Decode `struct termios` or `struct termios2` (by length). With the short form
    /// the speeds come from the `Bnnn` code in `c_cflag`, as Linux does.
    pub fn from_bytes(b: &[u8]) -> Option<Termios> {
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(b.get(17..17 + NCCS)?);
        let cflag = u32_at(b, 8)?;
        let (ispeed, ospeed) = if b.len() >= TERMIOS2_SIZE {
            (u32_at(b, 36)?, u32_at(b, 40)?)
        } else {
            (baud_of(cflag), baud_of(cflag))
        };
        Some(Termios {
            iflag: u32_at(b, 0)?,
            oflag: u32_at(b, 4)?,
            cflag,
            lflag: u32_at(b, 12)?,
            line: *b.get(16)?,
            cc,
            ispeed,
            ospeed,
        })
    }

    fn i(&self, flag: u32) -> bool {
        self.iflag & flag != 0
    }

    fn o(&self, flag: u32) -> bool {
        self.oflag & flag != 0
    }

    pub fn l(&self, flag: u32) -> bool {
        self.lflag & flag != 0
    }

    /// Whether `c` is the special character `idx` (0 disables one: `_POSIX_VDISABLE`).
    fn is(&self, c: u8, idx: usize) -> bool {
        self.cc.get(idx).is_some_and(|&v| v != 0 && v == c)
    }

    fn cc_at(&self, idx: usize) -> u8 {
        self.cc.get(idx).copied().unwrap_or(0)
    }
}

/// What the master's input did besides queueing bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Bytes taken (the rest did not fit).
    pub consumed: usize,
    /// Signals for the foreground process group, in order.
    pub signals: Vec<i32>,
    /// Input was flushed by a signal character (packet mode reports it).
    pub flushed: bool,
    /// Output was stopped or restarted (^S, ^Q).
    pub stop_changed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Erase {
    Char,
    Word,
    Line,
}

fn is_ctl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

/// The line discipline's state for one pty.
#[derive(Default)]
pub struct LineDiscipline {
    pub termios: Termios,
    /// Canonical mode: complete lines the slave may read. An empty line is an end of
    /// file (VEOF on an empty line): a read returns 0 for it.
    lines: VecDeque<Vec<u8>>,
    /// Canonical mode: the line being edited.
    edit: Vec<u8>,
    /// Non-canonical mode: the bytes the slave may read.
    raw: VecDeque<u8>,
    /// The previous character was VLNEXT: take the next one literally.
    lnext: bool,
    /// Bytes for the master to read: the slave's processed output and the echo.
    pub out: VecDeque<u8>,
    /// The output column, for tabs, ONOCR and visual erase.
    column: usize,
    /// The column the line being edited started at.
    canon_column: usize,
    /// Output stopped (^S with IXON, TCOOFF): slave writes wait.
    pub stopped: bool,
}

impl LineDiscipline {
    fn canonical(&self) -> bool {
        self.termios.l(libc::ICANON)
    }

    /// New settings (TCSETS*). Leaving canonical mode makes everything typed so far
    /// readable; entering it makes unread input the start of a line being edited.
    pub fn set_termios(&mut self, t: Termios) {
        let was = self.canonical();
        self.termios = t;
        let now = self.canonical();
        if was && !now {
            for l in self.lines.drain(..) {
                self.raw.extend(l);
            }
            self.raw.extend(self.edit.drain(..));
        } else if !was && now {
            self.edit.extend(self.raw.drain(..));
        }
        if !self.termios.i(libc::IXON) {
            self.stopped = false;
        }
    }

    /// Discard input not yet read by the slave (TCIFLUSH, a signal character).
    pub fn flush_input(&mut self) {
        self.lines.clear();
        self.edit.clear();
        self.raw.clear();
        self.lnext = false;
    }

    /// Discard output not yet read by the master.
    pub fn flush_output(&mut self) {
        self.out.clear();
    }

    /// Bytes the slave can read now (FIONREAD): complete lines in canonical mode.
    pub fn input_len(&self) -> usize {
        if self.canonical() {
            self.lines.iter().map(Vec::len).sum()
        } else {
            self.raw.len()
        }
    }

    fn pending_input(&self) -> usize {
        self.lines.iter().map(Vec::len).sum::<usize>() + self.edit.len() + self.raw.len()
    }

    /// Whether the master may write: there is room for input.
    pub fn input_room(&self) -> bool {
        self.pending_input() < N_TTY_BUF_SIZE
    }

    /// Whether the slave may write: output is not stopped and there is room.
    pub fn output_room(&self) -> bool {
        !self.stopped && self.out.len() < OUTPUT_MAX
    }

    /// Whether a slave read would return now (poll): a line in canonical mode; otherwise
    /// VMIN bytes (one if VMIN is 0 or VTIME is set), as Linux's `input_available_p`.
    pub fn readable(&self) -> bool {
        if self.canonical() {
            return !self.lines.is_empty();
        }
        let vmin = usize::from(self.termios.cc_at(VMIN));
        let vtime = self.termios.cc_at(VTIME);
        let want = if vtime == 0 && vmin > 0 { vmin } else { 1 };
        self.raw.len() >= want
    }

    /// A slave read into `buf`: `None` if it must wait. Canonical mode returns at most one
    /// line. Non-canonical mode waits for min(VMIN, len) bytes; with VMIN 0 and VTIME 0
    /// it never waits, with VMIN 0 and VTIME set it waits for one byte, for at most
    /// [`LineDiscipline::read_timeout`] (the caller's deadline). The inter-byte timer of
    /// VMIN > 0 with VTIME > 0 is not kept: such a read returns as soon as a byte is
    /// there, as if the timer had expired.
    pub fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        if buf.is_empty() {
            return Some(0);
        }
        if self.canonical() {
            let line = self.lines.front_mut()?;
            if line.is_empty() {
                self.lines.pop_front();
                return Some(0);
            }
            let n = buf.len().min(line.len());
            for (d, s) in buf.iter_mut().zip(line.drain(..n)) {
                *d = s;
            }
            if line.is_empty() {
                self.lines.pop_front();
            }
            return Some(n);
        }
        let vmin = usize::from(self.termios.cc_at(VMIN));
        let vtime = self.termios.cc_at(VTIME);
        if vmin == 0 {
            if vtime > 0 && self.raw.is_empty() {
                return None;
            }
        } else if vtime > 0 {
            if self.raw.is_empty() {
                return None;
            }
        } else if self.raw.len() < vmin.min(buf.len()) {
            return None;
        }
        let n = buf.len().min(self.raw.len());
        for (d, s) in buf.iter_mut().zip(self.raw.drain(..n)) {
            *d = s;
        }
        Some(n)
    }

    /// How long a blocking slave read may wait: VTIME tenths of a second in
    /// non-canonical mode with VMIN 0.
    pub fn read_timeout(&self) -> Option<std::time::Duration> {
        let vtime = self.termios.cc_at(VTIME);
        (!self.canonical() && self.termios.cc_at(VMIN) == 0 && vtime > 0)
            .then(|| std::time::Duration::from_millis(u64::from(vtime) * 100))
    }

    /// A master read of the output queue into `buf`.
    pub fn read_output(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.out.len());
        for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) {
            *d = s;
        }
        n
    }

    // ---- output (slave writes, echo) ----

    /// A slave write: process `data` (OPOST) into the output queue; returns how many
    /// bytes were taken (0 when stopped or full).
    pub fn write(&mut self, data: &[u8]) -> usize {
        let mut n = 0;
        for &c in data {
            if !self.output_room() {
                break;
            }
            self.output_char(c);
            n += 1;
        }
        n
    }

    /// One output byte through OPOST processing (Linux's `do_output_char`).
    fn output_char(&mut self, c: u8) {
        let t = self.termios;
        if !t.o(libc::OPOST) {
            self.out.push_back(c);
            return;
        }
        match c {
            b'\n' => {
                if t.o(libc::ONLRET) {
                    self.column = 0;
                }
                if t.o(libc::ONLCR) {
                    self.column = 0;
                    self.out.extend(b"\r\n");
                    return;
                }
                self.out.push_back(b'\n');
            }
            b'\r' => {
                if t.o(libc::ONOCR) && self.column == 0 {
                    return;
                }
                if t.o(libc::OCRNL) {
                    if t.o(libc::ONLRET) {
                        self.column = 0;
                    }
                    self.out.push_back(b'\n');
                    return;
                }
                self.column = 0;
                self.out.push_back(b'\r');
            }
            b'\t' => {
                let spaces = 8 - self.column % 8;
                if t.oflag & libc::TABDLY == libc::TAB3 {
                    self.column += spaces;
                    self.out.extend(std::iter::repeat_n(b' ', spaces));
                    return;
                }
                self.column += spaces;
                self.out.push_back(b'\t');
            }
            0x08 => {
                self.column = self.column.saturating_sub(1);
                self.out.push_back(c);
            }
            _ => {
                let c = if t.o(libc::OLCUC) {
                    c.to_ascii_uppercase()
                } else {
                    c
                };
                // With IUTF8, UTF-8 continuation bytes do not move the cursor.
                if !is_ctl(c) && !self.is_continuation(c) {
                    self.column += 1;
                }
                self.out.push_back(c);
            }
        }
    }

    /// Echo `c` as typed: a control character as `^X` with ECHOCTL (tab and newline
    /// excepted).
    fn echo(&mut self, c: u8) {
        if self.termios.l(libc::ECHOCTL) && is_ctl(c) && c != b'\t' && c != b'\n' {
            self.out.push_back(b'^');
            self.out.push_back(c ^ 0x40);
            self.column += 2;
        } else {
            self.output_char(c);
        }
    }

    // ---- input (master writes) ----

    /// Input from the master (what a user types): processed and queued for the slave,
    /// echoed to the master.
    pub fn receive(&mut self, data: &[u8]) -> Received {
        let mut r = Received::default();
        for &c in data {
            if !self.receive_char(c, &mut r) {
                break;
            }
            r.consumed += 1;
        }
        r
    }

    /// One input byte; false if it did not fit and must be offered again later.
    fn receive_char(&mut self, c: u8, r: &mut Received) -> bool {
        let t = self.termios;
        if !self.input_room() {
            return false;
        }
        let mut c = c;
        if t.i(libc::ISTRIP) {
            c &= 0x7f;
        }
        if t.i(libc::IUCLC) && t.l(libc::IEXTEN) {
            c = c.to_ascii_lowercase();
        }
        if self.lnext {
            self.lnext = false;
            self.put(c, true);
            return true;
        }
        if t.i(libc::IXON) {
            if t.is(c, VSTOP) {
                r.stop_changed |= !self.stopped;
                self.stopped = true;
                return true;
            }
            if t.is(c, VSTART) {
                r.stop_changed |= self.stopped;
                self.stopped = false;
                return true;
            }
            if self.stopped && t.i(libc::IXANY) {
                self.stopped = false;
                r.stop_changed = true;
            }
        }
        if t.l(libc::ISIG) {
            let sig = if t.is(c, VINTR) {
                Some(libc::SIGINT)
            } else if t.is(c, VQUIT) {
                Some(libc::SIGQUIT)
            } else if t.is(c, VSUSP) {
                Some(libc::SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                r.signals.push(sig);
                if !t.l(libc::NOFLSH) {
                    self.flush_input();
                    r.flushed = true;
                }
                if t.i(libc::IXON) && self.stopped {
                    self.stopped = false;
                    r.stop_changed = true;
                }
                if t.l(libc::ECHO) {
                    self.echo(c);
                }
                return true;
            }
        }
        if c == b'\r' {
            if t.i(libc::IGNCR) {
                return true;
            }
            if t.i(libc::ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(libc::INLCR) {
            c = b'\r';
        }
        if self.canonical() {
            if t.is(c, VERASE) {
                self.erase(Erase::Char);
                return true;
            }
            if t.is(c, VKILL) {
                self.erase(Erase::Line);
                return true;
            }
            if t.l(libc::IEXTEN) {
                if t.is(c, VWERASE) {
                    self.erase(Erase::Word);
                    return true;
                }
                if t.is(c, VLNEXT) {
                    self.lnext = true;
                    if t.l(libc::ECHO) && t.l(libc::ECHOCTL) {
                        // Linux shows "^" and backs over it until the next character.
                        self.out.extend(b"^\x08");
                    }
                    return true;
                }
                if t.is(c, VREPRINT) {
                    if t.l(libc::ECHO) {
                        self.echo(c);
                        self.output_char(b'\n');
                        let line = self.edit.clone();
                        for b in line {
                            self.echo(b);
                        }
                    }
                    return true;
                }
            }
            if c == b'\n' {
                if t.l(libc::ECHO) || t.l(libc::ECHONL) {
                    self.output_char(b'\n');
                }
                self.edit.push(c);
                self.commit_line();
                return true;
            }
            if t.is(c, VEOF) {
                // The line so far becomes readable without the EOF character; on an
                // empty line a read returns 0.
                self.commit_line();
                return true;
            }
            if t.is(c, VEOL) || (t.l(libc::IEXTEN) && t.is(c, VEOL2)) {
                if t.l(libc::ECHO) {
                    self.echo(c);
                }
                self.edit.push(c);
                self.commit_line();
                return true;
            }
        }
        self.put(c, false);
        true
    }

    /// Queue an ordinary (or literal-next) character, echoing it.
    fn put(&mut self, c: u8, literal: bool) {
        let t = self.termios;
        if t.l(libc::ECHO) {
            if literal && t.l(libc::ECHOCTL) && self.canonical() {
                // Take back the "^\b" shown for VLNEXT.
                self.out.extend(b"\x08");
            }
            if c == b'\n' {
                self.output_char(b'\n');
            } else {
                self.echo(c);
            }
        }
        if self.canonical() {
            // A full line takes nothing more but its end.
            if self.edit.len() < N_TTY_BUF_SIZE - 1 {
                self.edit.push(c);
            }
        } else {
            self.raw.push_back(c);
        }
    }

    fn commit_line(&mut self) {
        self.lines.push_back(std::mem::take(&mut self.edit));
        self.canon_column = self.column;
    }

    /// A UTF-8 continuation byte, when the terminal knows its input is UTF-8 (IUTF8).
    fn is_continuation(&self, c: u8) -> bool {
        self.termios.i(libc::IUTF8) && c & 0xc0 == 0x80
    }

    /// The columns `edit` takes when echoed from `canon_column`, up to each byte.
    fn width_of_last(&self) -> usize {
        let ctl = self.termios.l(libc::ECHOCTL);
        let mut col = self.canon_column;
        let mut last = 0;
        for &b in &self.edit {
            let w = if b == b'\t' {
                8 - col % 8
            } else if is_ctl(b) && ctl {
                2
            } else if is_ctl(b) || self.is_continuation(b) {
                0
            } else {
                1
            };
            col += w;
            last = w;
        }
        last
    }

    /// VERASE, VWERASE, VKILL (Linux's `eraser`).
    fn erase(&mut self, kind: Erase) {
        let t = self.termios;
        if self.edit.is_empty() {
            return;
        }
        let echo = t.l(libc::ECHO);
        if kind == Erase::Line
            && (!echo || !t.l(libc::ECHOK) || !t.l(libc::ECHOKE) || !t.l(libc::ECHOE))
        {
            self.edit.clear();
            if echo {
                self.echo(t.cc_at(VKILL));
                if t.l(libc::ECHOK) {
                    self.output_char(b'\n');
                }
            }
            return;
        }
        let mut seen_word = false;
        while let Some(&c) = self.edit.last() {
            if kind == Erase::Word {
                if c.is_ascii_alphanumeric() || c == b'_' {
                    seen_word = true;
                } else if seen_word {
                    break;
                }
            }
            let width = self.width_of_last();
            self.edit.pop();
            // A multibyte character goes whole (IUTF8): its continuation bytes first.
            let continuation = self.is_continuation(c);
            if echo && !continuation {
                if kind == Erase::Char && !t.l(libc::ECHOE) {
                    self.echo(t.cc_at(VERASE));
                } else if c == b'\t' {
                    self.out.extend(std::iter::repeat_n(0x08, width));
                    self.column = self.column.saturating_sub(width);
                } else {
                    for _ in 0..width {
                        self.out.extend(b"\x08 \x08");
                    }
                    self.column = self.column.saturating_sub(width);
                }
            }
            if kind == Erase::Char && !continuation {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests;
