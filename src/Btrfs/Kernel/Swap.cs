namespace Btrfs.Kernel
{
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>swapon(2).</summary>
    internal static class Swap
    {
        /// <summary>Switches the swapfile on, with a priority when given; the error says what, and <paramref name="advice"/> what to do (an EPERM gets its own).</summary>
        internal static void On(string path, int? priority, string what, string advice)
        {
            int flags = priority is int p ? Libc.SWAP_FLAG_PREFER | (p & Libc.SWAP_FLAG_PRIO_MASK) : 0;
            if (Libc.SwapOn(path, flags) != 0)
            {
                int errno = Errno.Last;
                throw FileOperationException.FromErrno(errno, "swapon", path, what, errno == Errno.EPERM ? "Activating swap needs root (CAP_SYS_ADMIN)." : advice);
            }
        }
    }
}
