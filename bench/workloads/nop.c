/* The static binary that fork_wait execs. */
int main(void)
{
    return 0;
}
