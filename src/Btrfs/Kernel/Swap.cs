namespace Btrfs.Kernel
{
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>swapon(2), and whether the kernel holds a file as an active swapfile.</summary>
    internal static class Swap
    {
        /// <summary>
        /// Whether the kernel holds the open file as an active swapfile, whatever path /proc/swaps shows for it; nothing
        /// is changed either way. Where the filesystem shares extents (btrfs, xfs): a FIDEDUPERANGE of its first block
        /// onto itself, which the kernel refuses with ETXTBSY for an active swapfile before it looks at the ranges, and
        /// with EINVAL (the ranges overlap) otherwise. Elsewhere (ext4 answers EINVAL for both), or where that gives no
        /// answer (EOPNOTSUPP: xfs without reflink): a write of no bytes through the same file opened again for writing
        /// (/proc/self/fd, without blocking on anyone's lease), which the kernel refuses with ETXTBSY for an active
        /// swapfile (generic_write_checks) and which writes nothing otherwise (no bytes, no times): true then, never
        /// false (see <see cref="RefusesWrites"/>). Null when nothing answers (not allowed to write it, a read-only
        /// mount, a filesystem that does not check a write of no bytes).
        /// </summary>
        internal static bool? IsActive(SafeFileDescriptor file)
        {
            if (Files.FileSystemOf(file) is { Kind: FileSystemKind.Btrfs or FileSystemKind.Xfs })
            {
                bool? shared = Clone.Dedupe(file, 0, 4096, file, 0).Errno switch
                {
                    Errno.ETXTBSY => true,
                    Errno.EINVAL => false,
                    _ => null,
                };
                if (shared is not null)
                {
                    return shared;
                }
            }

            return RefusesWrites(file);
        }

        /// <summary>
        /// A write of no bytes, through the file opened again for writing: ETXTBSY for an active swapfile where the
        /// kernel checks before it looks at the count (generic_write_checks: ext4, btrfs, tmpfs, f2fs), so only that
        /// answer is taken; a write that succeeds says nothing (xfs returns before the check for no bytes, as kernels
        /// before 5.4 do everywhere). The descriptor is held (a reference on the handle) while it is used: on the
        /// bounded worker thread the caller may have given up and closed the file, and its number may name another
        /// file by then. The open for writing starts the break of another's lease and is seen by inotify
        /// (IN_CLOSE_WRITE): asked only where a listed swapfile's path leads elsewhere.
        /// </summary>
        private static unsafe bool? RefusesWrites(SafeFileDescriptor file)
        {
            bool held = false;
            try
            {
                file.DangerousAddRef(ref held);
                string self = "/proc/self/fd/" + file.Fd.ToString(System.Globalization.CultureInfo.InvariantCulture);
                using SafeFileDescriptor writable = Libc.Open(self, Libc.O_WRONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY | Libc.O_CLOEXEC, 0);
                if (writable.IsInvalid)
                {
                    return null;
                }

                byte none = 0;
                return Libc.PWrite(writable, &none, 0, 0) != 0 && Errno.Last == Errno.ETXTBSY ? true : null;
            }
            catch (System.ObjectDisposedException)
            {
                return null; // closed by the caller, which no longer waits for the answer
            }
            finally
            {
                if (held)
                {
                    file.DangerousRelease();
                }
            }
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
