namespace Btrfs.Kernel
{
    using System;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>
    /// Data and state of an open file, through its descriptor: sync, size, allocation, reads and writes
    /// at an offset, data and holes, access checks and free space. Each call names the file in its
    /// error (<see cref="FileOperationException"/> with the call and errno).
    /// </summary>
    internal static class Files
    {
        /// <summary>fsync(2).</summary>
        internal static void Sync(SafeFileDescriptor fd, string path, string what = "Cannot sync", string? advice = null) =>
            Errno.Check(Libc.FSync(fd), "fsync", path, what, advice);

        /// <summary>
        /// sync_file_range(SYNC_FILE_RANGE_WRITE): starts writing back the dirty pages of a range without
        /// waiting, so the disk works while the caller goes on. Only a head start for a later fsync, which
        /// still decides: an error here is left for that fsync to report.
        /// </summary>
        internal static void StartWriteback(SafeFileDescriptor fd, long offset, long length) =>
            _ = Libc.SyncFileRange(fd, offset, length, Libc.SYNC_FILE_RANGE_WRITE);

        /// <summary>
        /// A descriptor of its own for the same open file description (fcntl F_DUPFD_CLOEXEC): closing either leaves
        /// the other open, and a lease taken through it is the description's (no second open of the file).
        /// </summary>
        internal static SafeFileDescriptor Duplicate(SafeFileDescriptor fd, string path, string what = "Cannot open")
        {
            var dup = new SafeFileDescriptor();
            dup.SetDescriptor(Libc.Fcntl(fd, Libc.F_DUPFD_CLOEXEC, 0));
            if (dup.IsInvalid)
            {
                int errno = Errno.Last;
                dup.Dispose();
                throw FileOperationException.FromErrno(errno, "fcntl(F_DUPFD_CLOEXEC)", path, what);
            }

            return dup;
        }

        /// <summary>fsync(2) for another thread: 0 or the errno (the caller throws where it can name the file).</summary>
        internal static int TrySync(SafeFileDescriptor fd) => Libc.FSync(fd) == 0 ? 0 : Errno.Last;

        /// <summary>syncfs(2): commits the filesystem holding <paramref name="fd"/>. 0 or the errno.</summary>
        internal static int TrySyncFileSystem(SafeFileDescriptor fd) => Libc.SyncFs(fd) == 0 ? 0 : Errno.Last;

        /// <summary>syncfs(2): writes back the whole filesystem the descriptor is on.</summary>
        internal static void SyncFileSystem(SafeFileDescriptor fd, string path, string what, string? advice = null) =>
            Errno.Check(Libc.SyncFs(fd), "syncfs", path, what, advice);

        /// <summary>ftruncate(2): 0 or the errno.</summary>
        internal static int TryTruncate(SafeFileDescriptor fd, long length) => Libc.FTruncate(fd, length) == 0 ? 0 : Errno.Last;

        /// <summary>fallocate(2) of [offset, offset + length): 0 or the errno (ENOSPC and EOPNOTSUPP are the caller's to explain).</summary>
        internal static int TryAllocate(SafeFileDescriptor fd, long offset, long length, bool keepSize) =>
            Libc.FAllocate(fd, keepSize ? Libc.FALLOC_FL_KEEP_SIZE : 0, offset, length) == 0 ? 0 : Errno.Last;

        /// <summary>pread(2) into <paramref name="buffer"/> at <paramref name="offset"/> (retried on EINTR): the bytes read, 0 at the end of the file.</summary>
        internal static unsafe int ReadAt(SafeFileDescriptor fd, Span<byte> buffer, long offset, string path, string what = "Cannot read")
        {
            fixed (byte* p = buffer)
            {
                while (true)
                {
                    nint n = Libc.PRead(fd, p, (nuint)buffer.Length, offset);
                    if (n >= 0)
                    {
                        return (int)n;
                    }

                    if (Errno.Last != Errno.EINTR)
                    {
                        throw Errno.Failure("pread", path, what);
                    }
                }
            }
        }

        /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>, short only at the end of the file: the bytes read.</summary>
        internal static int ReadFullyAt(SafeFileDescriptor fd, Span<byte> buffer, long offset, string path, string what = "Cannot read")
        {
            int total = 0;
            while (total < buffer.Length)
            {
                int n = ReadAt(fd, buffer[total..], offset + total, path, what);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }

            return total;
        }

        /// <summary>pwrite(2) of all of <paramref name="data"/> at <paramref name="offset"/> (retried on EINTR and short writes): 0, or the errno of the failed write.</summary>
        internal static unsafe int TryWriteAt(SafeFileDescriptor fd, ReadOnlySpan<byte> data, long offset)
        {
            fixed (byte* p = data)
            {
                int done = 0;
                while (done < data.Length)
                {
                    nint n = Libc.PWrite(fd, p + done, (nuint)(data.Length - done), offset + done);
                    if (n < 0)
                    {
                        int errno = Errno.Last;
                        if (errno == Errno.EINTR)
                        {
                            continue;
                        }

                        return errno;
                    }

                    done += (int)n;
                }
            }

            return 0;
        }

        /// <summary>
        /// posix_fadvise(2) that the range is read in order (a larger read-ahead window); a hint, so failures
        /// are ignored. Not WILLNEED as well: that submits the whole range at once, and reading 3 images of
        /// 256 MiB took 1.49 s with it against 0.86 s without (measured on a btrfs loop device).
        /// </summary>
        internal static void AdviseSequentialRead(SafeFileDescriptor fd, long offset, long length) =>
            _ = Libc.PosixFadvise(fd, offset, length, Libc.POSIX_FADV_SEQUENTIAL);

        /// <summary>
        /// posix_fadvise(WILLNEED): starts reading the range into the page cache without waiting, so that a
        /// call that then reads it page by page (the kernel's comparison in FIDEDUPERANGE) finds it there or
        /// on its way. A hint: failures are ignored.
        /// </summary>
        internal static void AdviseWillNeed(SafeFileDescriptor fd, long offset, long length) =>
            _ = Libc.PosixFadvise(fd, offset, length, Libc.POSIX_FADV_WILLNEED);

        /// <summary>
        /// posix_fadvise(DONTNEED): lets the kernel drop the range's clean pages from the page cache (dirty
        /// ones stay; write them back first). A hint: failures are ignored.
        /// </summary>
        internal static void AdviseDontNeed(SafeFileDescriptor fd, long offset, long length) =>
            _ = Libc.PosixFadvise(fd, offset, length, Libc.POSIX_FADV_DONTNEED);

        /// <summary>
        /// Turns O_DIRECT on for the descriptor (fcntl F_SETFL): its reads then go from the device into the
        /// caller's buffer, bypassing the page cache. Buffers, offsets and lengths must then be aligned (4 KiB
        /// does for every device here). False, and the descriptor as it was, where the filesystem refuses
        /// (procfs: EINVAL; tmpfs takes it since Linux 6.6).
        /// </summary>
        internal static bool TryReadDirect(SafeFileDescriptor fd)
        {
            int flags = Libc.Fcntl(fd, Libc.F_GETFL, 0);
            return flags >= 0 && ((flags & Libc.O_DIRECT) != 0 || Libc.Fcntl(fd, Libc.F_SETFL, flags | Libc.O_DIRECT) == 0);
        }

        /// <summary>
        /// Reads through the descriptor no longer update the file's access time (fcntl F_SETFL O_NOATIME), so that a
        /// copy that is then refused leaves the original's times as they were. Allowed for the file's owner and
        /// with CAP_FOWNER (root); false, and the descriptor as it was, otherwise.
        /// </summary>
        internal static bool TryKeepAccessTime(SafeFileDescriptor fd)
        {
            int flags = Libc.Fcntl(fd, Libc.F_GETFL, 0);
            return flags >= 0 && ((flags & Libc.O_NOATIME) != 0 || Libc.Fcntl(fd, Libc.F_SETFL, flags | Libc.O_NOATIME) == 0);
        }

        /// <summary>Turns O_DIRECT off again (reads through the page cache); a failure leaves it on, and the next read says.</summary>
        internal static void ReadBuffered(SafeFileDescriptor fd)
        {
            int flags = Libc.Fcntl(fd, Libc.F_GETFL, 0);
            if (flags >= 0 && (flags & Libc.O_DIRECT) != 0)
            {
                _ = Libc.Fcntl(fd, Libc.F_SETFL, flags & ~Libc.O_DIRECT);
            }
        }

        /// <summary>
        /// May this process write the file (faccessat W_OK with the effective ids, never following a
        /// link)? Relative to <paramref name="directory"/> when there is one, else by path. A refusal
        /// for another reason than permission counts as writable (the write itself will say).
        /// </summary>
        internal static bool MayWrite(SafeFileDescriptor? directory, string name, string path, out int errno)
        {
            int r = directory is { } dir
                ? Libc.FAccessAt(dir, name, Libc.W_OK, Libc.AT_EACCESS | Libc.AT_SYMLINK_NOFOLLOW)
                : Libc.FAccessAt(Libc.AT_FDCWD, path, Libc.W_OK, Libc.AT_EACCESS | Libc.AT_SYMLINK_NOFOLLOW);
            errno = r == 0 ? 0 : Errno.Last;
            return r == 0 || errno is not (Errno.EACCES or Errno.EPERM);
        }

        /// <summary>
        /// May this process write in and search the directory <paramref name="name"/> of <paramref name="directory"/>
        /// ("." for the directory itself), by the effective ids and never following a link? What the kernel asks of a
        /// directory before an entry in it goes, and of a subvolume's root before a user deletes it.
        /// </summary>
        internal static bool MayWriteAndSearch(SafeFileDescriptor directory, string name) => WriteAndSearchRefusal(directory, name) == 0;

        /// <summary>Whether this process may create files in the directory at <paramref name="path"/> as access(2) says (W_OK and X_OK, the real ids): SQLite's test of a temporary directory.</summary>
        internal static bool MayCreateIn(string path) => Libc.FAccessAt(Libc.AT_FDCWD, path, Libc.W_OK | Libc.X_OK, 0) == 0;

        /// <summary>As <see cref="MayWriteAndSearch"/>, the errno of the refusal (0 when allowed): EACCES is a permission lacking, EPERM an immutable directory (faccessat does not look at append-only), EROFS a read-only mount.</summary>
        /// <remarks>
        /// "." is asked without AT_SYMLINK_NOFOLLOW (it is never a link): glibc answers a call with that flag itself, from the
        /// mode bits alone, where the kernel has no faccessat2 (before 5.8) or glibc is older than 2.33, and would refuse a
        /// directory an ACL or a capability lets this user write in (a review).
        /// </remarks>
        internal static int WriteAndSearchRefusal(SafeFileDescriptor directory, string name) =>
            Libc.FAccessAt(directory, name, Libc.W_OK | Libc.X_OK, name == "." ? Libc.AT_EACCESS : Libc.AT_EACCESS | Libc.AT_SYMLINK_NOFOLLOW) == 0 ? 0 : Errno.Last;

        /// <summary>The filesystem holding an open file or directory (fstatfs); null when it cannot be examined.</summary>
        internal static FileSystemType? FileSystemOf(SafeFileDescriptor fd) =>
            Libc.FStatFs(fd, out Libc.StatFs sfs) == 0 ? FileSystemType.FromMagic(sfs.Type) : null;

        /// <summary>
        /// Which filesystem (for records that outlive a mount: a state file, a hash file): statfs f_fsid, which btrfs
        /// derives from the filesystem's UUID and the subvolume (inode numbers repeat across subvolumes) and ext4
        /// from its UUID; xfs from its device number, so the same xfs on another device (a renumbered loop or md
        /// device) would look new and a new one made on the same device would look known: there its UUID
        /// (FS_IOC_GETFSUUID, Linux 6.5), folded to 64 bits. 0 when it cannot be examined.
        /// </summary>
        internal static unsafe ulong FileSystemIdOf(SafeFileDescriptor fd)
        {
            if (Libc.FStatFs(fd, out Libc.StatFs sfs) != 0)
            {
                return 0;
            }

            if (sfs.Type == Libc.XFS_SUPER_MAGIC)
            {
                byte* uuid = stackalloc byte[17];
                if (Libc.Ioctl(fd, Libc.FS_IOC_GETFSUUID, uuid) == 0 && uuid[0] == 16)
                {
                    return System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(uuid + 1, 8))
                        ^ System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(uuid + 9, 8));
                }
            }

            return sfs.FileSystemId;
        }

        /// <summary>Bytes an unprivileged writer may still use on the filesystem (statfs f_bavail × f_frsize).</summary>
        internal static long AvailableBytes(SafeFileDescriptor fd, string path) => Available(StatFileSystem(fd, path));

        /// <summary>
        /// As <see cref="AvailableBytes(SafeFileDescriptor, string)"/>, where less than <paramref name="needed"/> is free
        /// on btrfs read again after a commit (BTRFS_IOC_SYNC, no privilege needed): btrfs counts space freed just
        /// now (a file deleted, a copy replaced) free only once its transaction commits, up to 30 s later, so a
        /// refusal would otherwise tell the user to free space they freed already. Not syncfs: that would take the
        /// write-back error this descriptor's own flush must still report (errseq, per open file). xfs and ext4
        /// count it at once.
        /// </summary>
        internal static unsafe long AvailableBytes(SafeFileDescriptor fd, string path, long needed)
        {
            Libc.StatFs sfs = StatFileSystem(fd, path);
            long available = Available(sfs);
            if (available < needed && sfs.Type == Libc.BTRFS_SUPER_MAGIC && Libc.Ioctl(fd, Libc.BTRFS_IOC_SYNC, null) == 0)
            {
                available = AvailableBytes(fd, path);
            }

            return available;
        }

        private static Libc.StatFs StatFileSystem(SafeFileDescriptor fd, string path)
        {
            Errno.Check(Libc.FStatFs(fd, out Libc.StatFs sfs), "fstatfs", path, "Cannot examine the filesystem of");
            return sfs;
        }

        /// <summary>f_bavail × f_frsize (f_bsize where the fragment size is not given).</summary>
        private static long Available(in Libc.StatFs sfs)
        {
            long unit = sfs.FragmentSize > 0 ? sfs.FragmentSize : sfs.BlockSize;
            return (long)Math.Min(sfs.BlocksAvailable * (ulong)unit, long.MaxValue);
        }

        /// <summary>The canonical absolute path (realpath(3)), or null when it cannot be resolved.</summary>
        internal static string? RealPath(string path) => Libc.RealPath(path);
    }
}
