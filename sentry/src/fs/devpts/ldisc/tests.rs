use super::*;

fn typed(ld: &mut LineDiscipline, s: &[u8]) -> Received {
    let r = ld.receive(s);
    assert_eq!(r.consumed, s.len());
    r
}

fn echo(ld: &mut LineDiscipline) -> Vec<u8> {
    let mut buf = vec![0u8; ld.out.len()];
    let n = ld.read_output(&mut buf);
    buf.truncate(n);
    buf
}

fn read_all(ld: &mut LineDiscipline) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    ld.read(&mut buf).map(|n| buf[..n].to_vec())
}

#[test]
fn termios_round_trips_in_both_layouts() {
    let t = Termios::default();
    let short = t.to_bytes(false);
    assert_eq!(short.len(), TERMIOS_SIZE);
    assert_eq!(Termios::from_bytes(&short), Some(t));
    let long = t.to_bytes(true);
    assert_eq!(long.len(), TERMIOS2_SIZE);
    assert_eq!(Termios::from_bytes(&long), Some(t));
    assert_eq!(Termios::from_bytes(&short[..20]), None);
    // With the short layout the speed comes from the Bnnn code.
    let mut b = short.clone();
    b[8..12].copy_from_slice(&(libc::B9600 | libc::CS8).to_ne_bytes());
    assert_eq!(Termios::from_bytes(&b).map(|t| t.ospeed), Some(9600));
    b[8..12].copy_from_slice(&(libc::B115200 | libc::CS8).to_ne_bytes());
    assert_eq!(Termios::from_bytes(&b).map(|t| t.ispeed), Some(115200));
}

#[test]
fn canonical_editing_and_echo() {
    let mut ld = LineDiscipline::default();
    typed(&mut ld, b"ab\tc");
    assert_eq!(read_all(&mut ld), None, "no line yet");
    assert!(!ld.readable());
    // Erasing c, then the tab (back to column 2: six columns of backspace).
    typed(&mut ld, b"\x7f\x7f");
    assert_eq!(echo(&mut ld), b"ab\tc\x08 \x08\x08\x08\x08\x08\x08\x08");
    // ECHOCTL: a control character takes two columns to show and to erase.
    typed(&mut ld, b"\x01\x7f\r");
    assert_eq!(echo(&mut ld), b"^A\x08 \x08\x08 \x08\r\n");
    assert!(ld.readable());
    assert_eq!(ld.input_len(), 3);
    assert_eq!(read_all(&mut ld), Some(b"ab\n".to_vec()));
    // Word erase keeps the space before the word; kill erases visually (ECHOKE).
    typed(&mut ld, b"one two  \x17x\x15y\n");
    assert_eq!(read_all(&mut ld), Some(b"y\n".to_vec()));
    // VEOF: the line without it, then an empty read for EOF.
    typed(&mut ld, b"end\x04\x04");
    assert_eq!(read_all(&mut ld), Some(b"end".to_vec()));
    assert_eq!(read_all(&mut ld), Some(Vec::new()));
    assert_eq!(read_all(&mut ld), None);
    // VLNEXT takes the next character literally (here the erase character).
    echo(&mut ld);
    typed(&mut ld, b"\x16\x7f\n");
    assert_eq!(read_all(&mut ld), Some(b"\x7f\n".to_vec()));
}

#[test]
fn kill_without_echoke_echoes_the_character_and_a_newline() {
    let mut ld = LineDiscipline::default();
    let mut t = ld.termios;
    t.lflag &= !libc::ECHOKE;
    ld.set_termios(t);
    typed(&mut ld, b"abc\x15");
    assert_eq!(echo(&mut ld), b"abc^U\r\n");
    // ECHOE off: erase echoes the erase character itself.
    t.lflag &= !libc::ECHOE;
    ld.set_termios(t);
    typed(&mut ld, b"d\x7f");
    assert_eq!(echo(&mut ld), b"d^?");
}

#[test]
fn signal_characters_flush_and_echo() {
    let mut ld = LineDiscipline::default();
    let r = typed(&mut ld, b"half\x03");
    assert_eq!(r.signals, vec![libc::SIGINT]);
    assert!(r.flushed);
    assert_eq!(echo(&mut ld), b"half^C");
    typed(&mut ld, b"\n");
    assert_eq!(
        read_all(&mut ld),
        Some(b"\n".to_vec()),
        "the half line was flushed"
    );
    let r = typed(&mut ld, b"\x1c\x1a");
    assert_eq!(r.signals, vec![libc::SIGQUIT, libc::SIGTSTP]);
    // NOFLSH keeps the input; ISIG off makes ^C a character.
    let mut t = ld.termios;
    t.lflag |= libc::NOFLSH;
    ld.set_termios(t);
    let r = typed(&mut ld, b"k\x03\n");
    assert!(!r.flushed);
    assert_eq!(read_all(&mut ld), Some(b"k\n".to_vec()));
    t.lflag &= !libc::ISIG;
    ld.set_termios(t);
    let r = typed(&mut ld, b"\x03\n");
    assert!(r.signals.is_empty());
    assert_eq!(read_all(&mut ld), Some(b"\x03\n".to_vec()));
}

#[test]
fn input_translations() {
    let mut ld = LineDiscipline::default();
    let mut t = ld.termios;
    t.iflag = libc::IGNCR;
    ld.set_termios(t);
    typed(&mut ld, b"a\rb\n");
    assert_eq!(read_all(&mut ld), Some(b"ab\n".to_vec()));
    t.iflag = libc::INLCR;
    t.lflag &= !libc::ICANON;
    ld.set_termios(t);
    typed(&mut ld, b"\n");
    assert_eq!(read_all(&mut ld), Some(b"\r".to_vec()));
}

#[test]
fn raw_mode_vmin() {
    let mut ld = LineDiscipline::default();
    typed(&mut ld, b"pending");
    let mut t = ld.termios;
    t.lflag &= !(libc::ICANON | libc::ECHO);
    t.cc[VMIN] = 3;
    ld.set_termios(t);
    // Leaving canonical mode makes the unfinished line readable.
    assert_eq!(read_all(&mut ld), Some(b"pending".to_vec()));
    typed(&mut ld, b"ab");
    assert!(!ld.readable());
    assert_eq!(read_all(&mut ld), None);
    // A short buffer needs only its own size.
    let mut one = [0u8; 1];
    assert_eq!(ld.read(&mut one), Some(1));
    typed(&mut ld, b"cd");
    assert!(ld.readable());
    assert_eq!(read_all(&mut ld), Some(b"bcd".to_vec()));
    t.cc[VMIN] = 0;
    ld.set_termios(t);
    assert_eq!(read_all(&mut ld), Some(Vec::new()));
    assert_eq!(ld.read_timeout(), None);
    // VTIME with VMIN 0: wait (for the caller's deadline) for one byte.
    t.cc[VTIME] = 5;
    ld.set_termios(t);
    assert_eq!(
        ld.read_timeout(),
        Some(std::time::Duration::from_millis(500))
    );
    assert_eq!(read_all(&mut ld), None);
    typed(&mut ld, b"v");
    assert_eq!(read_all(&mut ld), Some(b"v".to_vec()));
    t.cc[VTIME] = 0;
    ld.set_termios(t);
    // Back to canonical: unread input becomes the line being edited.
    typed(&mut ld, b"xy");
    t.lflag |= libc::ICANON;
    ld.set_termios(t);
    typed(&mut ld, b"\n");
    assert_eq!(read_all(&mut ld), Some(b"xy\n".to_vec()));
}

#[test]
fn output_processing_and_flow_control() {
    let mut ld = LineDiscipline::default();
    assert_eq!(ld.write(b"a\nb"), 3);
    assert_eq!(echo(&mut ld), b"a\r\nb");
    let mut t = ld.termios;
    t.oflag |= libc::OCRNL | libc::TAB3 | libc::OLCUC;
    ld.set_termios(t);
    // OCRNL without ONLRET leaves the column (1, after "b") as it was, as in Linux.
    ld.write(b"\rx\ty");
    assert_eq!(echo(&mut ld), b"\nX      Y");
    t.oflag = 0;
    ld.set_termios(t);
    ld.write(b"\n");
    assert_eq!(echo(&mut ld), b"\n");
    // ^S stops output, ^Q restarts it.
    let r = typed(&mut ld, b"\x13");
    assert!(r.stop_changed);
    assert_eq!(ld.write(b"z"), 0);
    typed(&mut ld, b"\x11");
    assert_eq!(ld.write(b"z"), 1);
    // A full input queue takes no more in raw mode.
    t.lflag &= !libc::ICANON;
    t.lflag &= !libc::ECHO;
    ld.set_termios(t);
    let big = vec![b'q'; N_TTY_BUF_SIZE + 10];
    assert_eq!(ld.receive(&big).consumed, N_TTY_BUF_SIZE);
    assert!(!ld.input_room());
}

#[test]
fn iutf8_erases_whole_characters() {
    let mut ld = LineDiscipline::default();
    let mut t = ld.termios;
    t.iflag |= libc::IUTF8;
    ld.set_termios(t);
    typed(&mut ld, "aé".as_bytes());
    typed(&mut ld, b"\x7f\n");
    assert_eq!(read_all(&mut ld), Some(b"a\n".to_vec()));
    assert_eq!(echo(&mut ld), "aé\x08 \x08\r\n".as_bytes());
    // Without IUTF8 each byte is a character.
    t.iflag &= !libc::IUTF8;
    ld.set_termios(t);
    typed(&mut ld, "é".as_bytes());
    typed(&mut ld, b"\x7f\n");
    assert_eq!(read_all(&mut ld), Some(vec![0xc3, b'\n']));
}

#[test]
fn echonl_echoes_only_the_newline() {
    let mut ld = LineDiscipline::default();
    let mut t = ld.termios;
    t.lflag &= !libc::ECHO;
    t.lflag |= libc::ECHONL;
    ld.set_termios(t);
    typed(&mut ld, b"secret\r");
    assert_eq!(echo(&mut ld), b"\r\n");
    assert_eq!(read_all(&mut ld), Some(b"secret\n".to_vec()));
    // VEOL ends a line too, and keeps its character.
    t.cc[VEOL] = b';';
    ld.set_termios(t);
    typed(&mut ld, b"a;");
    assert_eq!(read_all(&mut ld), Some(b"a;".to_vec()));
}
