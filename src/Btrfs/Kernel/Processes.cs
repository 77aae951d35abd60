namespace Btrfs.Kernel
{
    using System;
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

        /// <summary>CAP_SYS_ADMIN: what swapon, the tree searches and deleting any subvolume ask of the caller.</summary>
        private const int CapSysAdmin = 21;

        /// <summary>CAP_FOWNER: acting as the owner of any file (a snapshot of another user's subvolume).</summary>
        private const int CapFowner = 3;

        /// <summary>Whether the calling thread holds CAP_SYS_ADMIN in its effective set (<see cref="HasCapability"/>).</summary>
        internal static bool HasSysAdmin() => HasCapability(CapSysAdmin);

        /// <summary>Whether the calling thread holds CAP_FOWNER in its effective set (<see cref="HasCapability"/>).</summary>
        internal static bool HasFowner() => HasCapability(CapFowner);

        /// <summary>
        /// Whether the calling thread holds capability <paramref name="capability"/> in its effective set (capabilities are
        /// a thread's: the CapEff line of /proc/thread-self/status, as the kernel reports it; false when that cannot be read).
        /// </summary>
        private static bool HasCapability(int capability)
        {
            try
            {
                foreach (string line in System.IO.File.ReadLines("/proc/thread-self/status"))
                {
                    if (line.StartsWith("CapEff:", System.StringComparison.Ordinal))
                    {
                        return ulong.TryParse(line.AsSpan(7).Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out ulong caps)
                            && (caps & (1UL << capability)) != 0;
                    }
                }
            }
            catch (System.IO.IOException)
            {
            }
            catch (System.UnauthorizedAccessException)
            {
            }

            return false;
        }
    }
}
