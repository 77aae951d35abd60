namespace Btrfs.Kernel
{
    using Btrfs.Interop;

    /// <summary>Processes and their threads, as the kernel compares them.</summary>
    internal static class Processes
    {
        /// <summary>
        /// Whether thread <paramref name="thread"/> of process <paramref name="process"/> uses the process's own
        /// descriptor table (<paramref name="files"/>) or filesystem attributes (otherwise), as threads do unless
        /// one unshared them (unshare CLONE_FILES or CLONE_FS) or the process's first thread has exited. False
        /// also when the kernel will not compare them for this user (kcmp needs ptrace access to both).
        /// </summary>
        internal static bool SharesWithProcess(int process, int thread, bool files) =>
            Libc.Syscall(Libc.SYS_kcmp, process, thread, files ? Libc.KCMP_FILES : Libc.KCMP_FS, 0, 0) == 0;
    }
}
