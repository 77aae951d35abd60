namespace Btrfs.Kernel
{
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>swapon(2), and whether the kernel holds a file as an active swapfile.</summary>
    internal static class Swap
    {
        /// <summary>
        /// Whether the kernel holds the open file as an active swapfile, whatever path /proc/swaps shows for it: a
        /// FIDEDUPERANGE of its first block onto itself, which the kernel refuses with ETXTBSY for an active swapfile
        /// before it looks at the ranges, and with EINVAL (the ranges overlap) otherwise; nothing is changed either
        /// way. Decisive only where the filesystem shares extents (btrfs, xfs): null on others (ext4 answers EINVAL
        /// for both) and for any other answer (EPERM: neither the owner nor allowed to write it; EOPNOTSUPP: xfs
        /// without reflink).
        /// </summary>
        internal static bool? IsActive(SafeFileDescriptor file)
        {
            if (Files.FileSystemOf(file) is not { Kind: FileSystemKind.Btrfs or FileSystemKind.Xfs })
            {
                return null;
            }

            return Clone.Dedupe(file, 0, 4096, file, 0).Errno switch
            {
                Errno.ETXTBSY => true,
                Errno.EINVAL => false,
                _ => null,
            };
        }

        /// <summary>
        /// <see cref="IsActive"/>, waiting at most <paramref name="timeout"/>: FIDEDUPERANGE asks for write access to the
        /// filesystem first, which a frozen one (fsfreeze, a backup's snapshot) holds back, uninterruptibly, until it is
        /// thawed. Null when it did not answer in time (the look-up is left waiting in the kernel, on a thread of its own).
        /// </summary>
        internal static bool? IsActiveWithin(SafeFileDescriptor file, System.TimeSpan timeout) =>
            Bounded.Run(() => new System.Runtime.CompilerServices.StrongBox<bool?>(IsActive(file)), timeout, out _)?.Value;

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
