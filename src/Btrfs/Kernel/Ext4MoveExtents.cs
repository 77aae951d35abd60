namespace Btrfs.Kernel
{
    using System;
    using System.Threading;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>
    /// EXT4_IOC_MOVE_EXT (what e4defrag uses): the kernel moves a donor file's blocks under a file's
    /// data, copying each page itself under both files' locks, so a writer never loses a write.
    /// </summary>
    internal static class Ext4MoveExtents
    {
        /// <summary>
        /// Moves up to <paramref name="blocks"/> blocks at <paramref name="block"/> of <paramref name="donor"/>
        /// under the same blocks of <paramref name="file"/>, after asking for the file's data ahead (the
        /// kernel reads each page it moves on its own). A partial move counts and is returned at once (the
        /// kernel reports what it moved even when it failed; asking again from the same start would move
        /// those blocks back). A signal (EINTR) is tried again; pages the kernel cannot let go of (EBUSY:
        /// dirty, or under writeback) are written back (fsync) and tried again a few times. Returns the
        /// blocks moved (at least 1); throws with <paramref name="advice"/> when nothing could be moved.
        /// </summary>
        internal static unsafe long Move(SafeFileDescriptor file, SafeFileDescriptor donor, long block, long blocks, int blockSize, string path, string advice)
        {
            _ = Libc.PosixFadvise(file, block * blockSize, blocks * blockSize, Libc.POSIX_FADV_WILLNEED);
            var args = new Libc.MoveExtent
            {
                DonorFd = (uint)donor.Fd,
                OrigStart = (ulong)block,
                DonorStart = (ulong)block,
                Length = (ulong)blocks,
            };
            int busy = 0;
            while (Libc.Ioctl(file, Libc.EXT4_IOC_MOVE_EXT, &args) < 0)
            {
                int errno = Errno.Last;
                if (args.MovedLength > 0)
                {
                    break;
                }

                if (errno == Errno.EINTR)
                {
                    continue;
                }

                if (errno == Errno.EBUSY && ++busy < 20)
                {
                    // Dirty or under writeback: written back, then asked again.
                    _ = Files.TrySync(file);
                    Thread.Sleep(busy < 10 ? 1 : 10);
                    continue;
                }

                throw FileOperationException.FromErrno(
                    errno,
                    "EXT4_IOC_MOVE_EXT",
                    path,
                    "Cannot move the new extents under",
                    errno == Errno.EOPNOTSUPP ? "ext4 moves extents only for files in extent format (not ext3-style block maps, not on bigalloc). The data is intact." : advice);
            }

            return Math.Max(1, (long)args.MovedLength);
        }
    }
}
