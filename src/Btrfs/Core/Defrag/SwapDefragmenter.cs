namespace Btrfs.Core
{
    using System;
    using System.Runtime.InteropServices;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// Invoke-BtrfsDefrag's Core for xfs and ext4, the xfs_fsr way: an unnamed file on the same
    /// filesystem is preallocated to mirror the file's layout (holes stay holes, preallocated space
    /// stays preallocated) and kept only if it got fewer extents; then the data is put into it and the
    /// two files' extents are exchanged by the kernel, which refuses if the file changed meanwhile:
    /// <list type="bullet">
    /// <item>xfs with the exchange-range feature: XFS_IOC_START_COMMIT before the copy, XFS_IOC_COMMIT_RANGE after (EBUSY if changed);</item>
    /// <item>xfs with the reverse-mapping btree (rmapbt): XFS_IOC_SWAPEXT with the file's change and modification times from before the copy (EBUSY if changed);</item>
    /// <item>other xfs with reflink (mkfs.xfs's default): no exchange at all. The file's ranges are
    /// remapped onto the copy's contiguous extents with FIDEDUPERANGE in steps: the kernel compares the
    /// bytes under both files' locks (a range a writer changed meanwhile stays as it was), every step is
    /// an ordinary logged remap, and closing the unnamed copy drops its references, so the file keeps
    /// the new extents unshared. XFS_IOC_SWAPEXT is avoided there because on kernels since 5.8 log
    /// recovery of a swap that moved a btree-format fork without rmapbt fails its checksum check
    /// ("Structure needs cleaning", xfs_dinode_verify): a crash after such a swap left the filesystem
    /// unmountable until xfs_repair -L (xfs_fsr has the same problem);</item>
    /// <item>xfs with neither reflink nor rmapbt: no safe way exists, so the file is skipped with a warning;</item>
    /// <item>ext4: EXT4_IOC_MOVE_EXT, which copies each page itself under its locks, in steps.</item>
    /// </list>
    /// The inode stays the same (this is an exchange, not a replacement); the unnamed file ends up with
    /// the old extents and frees them when closed. Whole-file only.
    /// </summary>
    public sealed class SwapDefragmenter : Defragmenter
    {
        private readonly DefragMethod method;
        private readonly int blockSize;
        private long copyExtents;

        /// <summary>Bytes per FIDEDUPERANGE step: both files stay locked for a step, so not the kernel's 1 GiB.</summary>
        internal const long DedupeStep = 64L << 20;

        private readonly uint xfsFeatures;

        internal SwapDefragmenter(OpenFile file, DefragOptions options)
            : base(file, options)
        {
            xfsFeatures = file.FileSystem.Kind == FileSystemKind.Xfs ? XfsFeatures(file) : 0;
            method = file.FileSystem.Kind == FileSystemKind.Ext4 ? DefragMethod.Ext4MoveExtents
                : (xfsFeatures & Libc.XFS_FSOP_GEOM_FLAGS_EXCHANGE_RANGE) != 0 ? DefragMethod.XfsExchangeRange
                : (xfsFeatures & Libc.XFS_FSOP_GEOM_FLAGS_RMAPBT) != 0 ? DefragMethod.XfsSwapExtents
                : (xfsFeatures & Libc.XFS_FSOP_GEOM_FLAGS_REFLINK) != 0 ? DefragMethod.XfsDedupeRange
                : DefragMethod.XfsSwapExtents;
            blockSize = Libc.FStatFs(file.Handle, out Libc.StatFs sfs) == 0 && sfs.BlockSize > 0 ? (int)sfs.BlockSize : 4096;
        }

        /// <inheritdoc/>
        public override DefragMethod Method => method;

        /// <summary>Whether an xfs filesystem can exchange file ranges (XFS_IOC_FSGEOMETRY: XFS_FSOP_GEOM_FLAGS_EXCHANGE_RANGE).</summary>
        internal static bool HasExchangeRange(OpenFile file) => (XfsFeatures(file) & Libc.XFS_FSOP_GEOM_FLAGS_EXCHANGE_RANGE) != 0;

        /// <summary>The feature flags of an xfs filesystem (XFS_IOC_FSGEOMETRY), 0 when they cannot be read.</summary>
        internal static unsafe uint XfsFeatures(OpenFile file)
        {
            byte* geometry = stackalloc byte[Libc.XfsGeometrySize];
            return Libc.Ioctl(file.Handle, Libc.XFS_IOC_FSGEOMETRY, geometry) < 0 ? 0 : *(uint*)(geometry + Libc.XfsGeometryFlagsOffset);
        }

        /// <inheritdoc/>
        public override DefragResult Run(Action<long>? progress = null, CancellationToken cancel = default)
        {
            if (SkipReason is not null)
            {
                return Skipped(SkipReason);
            }

            Clock.Restart();
            using SafeFileDescriptor writable = OpenWritable();
            using TemporaryFile copy = CreateDonor();
            using OpenFile original = OpenFile.Borrow(writable, File.Path, File.FileSystem, File.Size);
            FileStatus status = original.Restat();

            // 1. The same identity the kernel checks (owner, project, extent size hints; xfs: the
            //    extended attributes too, so both attribute forks start at the same offset). A remap
            //    moves only data extents: the allocation hints are enough.
            if (method is DefragMethod.XfsSwapExtents or DefragMethod.XfsExchangeRange)
            {
                CopyXfsAttributes(copy.Handle);
                MetadataCopy.Copy(original, copy.Handle, File.Path, InodeAttributes.Get(copy.Handle, File.Path), InodeAttributes.Get(writable, File.Path));
            }
            else if (method == DefragMethod.XfsDedupeRange)
            {
                CopyXfsAttributes(copy.Handle);
            }

            // 2. Allocate the mirror, and give up unless it has fewer extents.
            Mirror(copy.Handle, status.Size);
            copyExtents = Fiemap.Count(OpenFile.Borrow(copy.Handle, File.Path, File.FileSystem, status.Size), 0, ulong.MaxValue);
            if (copyExtents >= Before.ExtentCount)
            {
                return Skipped($"no improvement: the free space is as fragmented as the file (a new copy would get {copyExtents} extents, the file has {Before.ExtentCount}); nothing was written");
            }

            cancel.ThrowIfCancellationRequested();
            return method switch
            {
                DefragMethod.Ext4MoveExtents => MoveExtents(copy.Handle, writable, status.Size, progress, cancel),
                DefragMethod.XfsDedupeRange => CopyAndRemap(original, copy, writable, status, progress, cancel),
                _ => CopyAndExchange(original, copy.Handle, writable, status, progress, cancel),
            };
        }

        /// <inheritdoc/>
        private protected override void Plan()
        {
            string fs = File.FileSystem.DisplayName;
            if (Options.Offset != 0 || Options.Length is not null)
            {
                throw new FileOperationException(
                    FileErrorKind.InvalidArgument,
                    Errno.EINVAL,
                    "defragment",
                    File.Path,
                    $"Cannot defragment a range of '{File.Path}': on {fs} a file is defragmented whole (its extents are exchanged with a new copy's), so -Offset and -Length apply to btrfs only. Run it without them. Nothing was changed.");
            }

            if (Options.Compress is not null)
            {
                throw new FileOperationException(
                    FileErrorKind.NotSupported,
                    Errno.EOPNOTSUPP,
                    "defragment",
                    File.Path,
                    $"Cannot compress '{File.Path}': {fs} has no transparent compression; -Compress applies to btrfs only. Run it without -Compress to defragment. Nothing was changed.");
            }

            InodeFlags flags = CheckWritable();
            Before = FragmentationAnalyzer.Count(File, Options.ExtentThreshold, sync: true);
            BytesToRewrite = method == DefragMethod.Ext4MoveExtents ? Before.CoveredBytes : Before.WrittenBytes;
            BytesNeeded = RoundUp(Before.CoveredBytes);
            if (SkipUnchangeable(flags))
            {
                return;
            }

            if (method != DefragMethod.Ext4MoveExtents && (GetXattr(File.Handle).XFlags & Libc.FS_XFLAG_NODEFRAG) != 0)
            {
                Skip("marked no-defrag (xfs_io -c 'chattr +f'): left as it is, as xfs_fsr does", warning: true);
            }
            else if (method == DefragMethod.XfsSwapExtents && (xfsFeatures & Libc.XFS_FSOP_GEOM_FLAGS_RMAPBT) == 0 && Before.ExtentCount > 1)
            {
                Skip("on an xfs made without reflink and without rmapbt: the only way to defragment there is XFS_IOC_SWAPEXT (what xfs_fsr does), and on kernels since 5.8 a crash after such a swap can leave the filesystem unmountable (log recovery fails with \"Structure needs cleaning\") until xfs_repair -L; left as it is. An xfs made with reflink=1 (mkfs.xfs's default) or rmapbt=1 is defragmented safely", warning: true);
            }
            else if (Before.Score == 0 || Before.ExtentCount <= Before.BestExtentCount)
            {
                string why = Before.ExtentCount <= Before.BestExtentCount
                    ? $"it has the fewest extents possible ({Before.ExtentCount}: one per run of data between holes)"
                    : $"no data in fragments shorter than {SizeFormatter.Format(Options.ExtentThreshold)} ({Before.ExtentCount} extents in {Before.FragmentCount} fragments)";
                Skip("nothing to do: " + why, warning: false);
            }
            else if (Before.SharedBytes > 0 && !Options.IncludeShared)
            {
                SharedBytesSkipped = Before.SharedBytes;
                Skip($"sharing {SizeFormatter.Format(Before.SharedBytes)} with reflink copies: on {fs} the whole file is exchanged, so it would stop sharing; -IncludeShared rewrites it anyway", warning: false);
            }
            else if (BytesNeeded > AvailableBytes)
            {
                throw new FileOperationException(
                    FileErrorKind.InsufficientSpace,
                    Errno.ENOSPC,
                    "statfs",
                    File.Path,
                    $"Cannot defragment '{File.Path}': the new copy needs {SizeFormatter.Format(BytesNeeded)} while it is made, and {SizeFormatter.Format(AvailableBytes)} is free. Free some space and try again. Nothing was changed.");
            }
            else
            {
                SharedBytesToUnshare = Before.SharedBytes;
            }
        }

        private static Libc.FsXattr GetXattr(SafeFileDescriptor fd)
        {
            Libc.FsXattr x = default;
            unsafe
            {
                _ = Libc.Ioctl(fd, Libc.FS_IOC_FSGETXATTR, &x);
            }

            return x;
        }

        private long RoundUp(long bytes) => (bytes + blockSize - 1) / blockSize * blockSize;

        /// <summary>The unnamed donor file, in the file's own directory (the descriptor it was opened relative to).</summary>
        private TemporaryFile CreateDonor()
        {
            string dirPath = System.IO.Path.GetDirectoryName(File.Path) is { Length: > 0 } d ? d : "/";
            SafeFileDescriptor dir = File.Directory ?? throw new InvalidOperationException("the file must be opened relative to its directory");
            return TemporaryFile.Create(dir, dirPath, File.Name, forceNamed: false);
        }

        /// <summary>The file again, for writing (both exchanges need it), without updating its access time when allowed; the same inode as planned.</summary>
        private SafeFileDescriptor OpenWritable()
        {
            int flags = Libc.O_RDWR | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NOCTTY | Libc.O_NONBLOCK;
            SafeFileDescriptor dir = File.Directory ?? throw new InvalidOperationException("the file must be opened relative to its directory");
            SafeFileDescriptor fd = Libc.OpenAt(dir, File.Name, flags | Libc.O_NOATIME, 0);
            if (fd.IsInvalid && Marshal.GetLastPInvokeError() == Errno.EPERM)
            {
                fd.Dispose();
                fd = Libc.OpenAt(dir, File.Name, flags, 0); // O_NOATIME is for the owner (or CAP_FOWNER) only
            }

            if (fd.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                fd.Dispose();
                throw FileOperationException.FromErrno(errno, "open(O_RDWR)", File.Path, "Cannot open for defragmenting", "Nothing was changed.");
            }

            if (FileStatus.Of(fd) is not FileStatus now || !now.SameInode(File.Status))
            {
                fd.Dispose();
                throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "open", File.Path, $"Cannot defragment '{File.Path}': it was replaced by another file since it was measured. Nothing was changed; run it again.");
            }

            return fd;
        }

        /// <summary>xfs: the extended inode attributes that steer allocation and that SWAPEXT compares (realtime, extent size hints, project id).</summary>
        private unsafe void CopyXfsAttributes(SafeFileDescriptor copy)
        {
            Libc.FsXattr x = GetXattr(File.Handle);
            x.XFlags &= ~(Libc.FS_XFLAG_IMMUTABLE | Libc.FS_XFLAG_APPEND | Libc.FS_XFLAG_NODEFRAG);
            x.NExtents = 0;
            if ((x.XFlags != 0 || x.ExtSize != 0 || x.ProjId != 0 || x.CowExtSize != 0) && Libc.Ioctl(copy, Libc.FS_IOC_FSSETXATTR, &x) < 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "FS_IOC_FSSETXATTR", File.Path, "Cannot give the new copy the xfs attributes of", "Nothing was changed.");
            }
        }

        /// <summary>
        /// Allocates the copy where the file has extents (written or preallocated) up to its size,
        /// one call per logically contiguous run, so the allocator can place each run in one piece.
        /// </summary>
        private void Mirror(SafeFileDescriptor copy, long size)
        {
            long end = RoundUp(size);
            int mode = method == DefragMethod.Ext4MoveExtents ? 0 : Libc.FALLOC_FL_KEEP_SIZE;
            long runStart = -1, runEnd = -1;
            foreach (RawExtent e in Fiemap.Read(File, 0, (ulong)end, sync: false))
            {
                long s = (long)e.Logical, t = Math.Min((long)e.End, end);
                if (t <= s)
                {
                    continue;
                }

                if (s == runEnd)
                {
                    runEnd = t;
                    continue;
                }

                Allocate(copy, mode, runStart, runEnd, size);
                (runStart, runEnd) = (s, t);
            }

            Allocate(copy, mode, runStart, runEnd, size);
            if (method == DefragMethod.Ext4MoveExtents && Libc.FTruncate(copy, size) != 0)
            {
                throw DataCopy.Failure(Marshal.GetLastPInvokeError(), "ftruncate", File.Path, 0, size);
            }
        }

        private void Allocate(SafeFileDescriptor copy, int mode, long start, long end, long size)
        {
            if (start >= 0 && end > start && Libc.FAllocate(copy, mode, start, end - start) != 0)
            {
                throw DataCopy.Failure(Marshal.GetLastPInvokeError(), "fallocate", File.Path, 0, size);
            }
        }

        /// <summary>xfs: records the file's state, copies the data into the mirror, and has the kernel exchange the extents if the file did not change.</summary>
        private unsafe DefragResult CopyAndExchange(OpenFile original, SafeFileDescriptor copy, SafeFileDescriptor writable, FileStatus status, Action<long>? progress, CancellationToken cancel)
        {
            Libc.XfsCommitRange commit = default;
            if (method == DefragMethod.XfsExchangeRange && Libc.Ioctl(writable, Libc.XFS_IOC_START_COMMIT, &commit) < 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "XFS_IOC_START_COMMIT", File.Path, "Cannot start an exchange for", "Nothing was changed.");
            }

            long copied = DataCopy.Copy(original, copy, File.Path, status.Size, progress, cancel, preallocate: false);
            if (Libc.FSync(copy) != 0)
            {
                throw DataCopy.Failure(Marshal.GetLastPInvokeError(), "fsync", File.Path, copied, status.Size);
            }

            cancel.ThrowIfCancellationRequested();
            int rc;
            string operation;
            if (method == DefragMethod.XfsExchangeRange)
            {
                operation = "XFS_IOC_COMMIT_RANGE";
                commit.File1Fd = copy.DangerousGetHandle().ToInt32();
                commit.Length = (ulong)status.Size;
                commit.Flags = Libc.XFS_EXCHANGE_RANGE_TO_EOF;
                rc = Libc.Ioctl(writable, Libc.XFS_IOC_COMMIT_RANGE, &commit);
            }
            else
            {
                operation = "XFS_IOC_SWAPEXT";
                var swap = new Libc.XfsSwapExt
                {
                    FdTarget = writable.DangerousGetHandle().ToInt64(),
                    FdTmp = copy.DangerousGetHandle().ToInt64(),
                    Offset = 0,
                    Length = status.Size,
                };
                swap.Stat.Ino = status.Inode;
                swap.Stat.Mode = status.Mode;
                swap.Stat.Size = status.Size;
                swap.Stat.Atime = new Libc.XfsBsTime { Seconds = status.AccessTime.Seconds, Nanoseconds = (int)status.AccessTime.Nanoseconds };
                swap.Stat.Mtime = new Libc.XfsBsTime { Seconds = status.ModifyTime.Seconds, Nanoseconds = (int)status.ModifyTime.Nanoseconds };
                swap.Stat.Ctime = new Libc.XfsBsTime { Seconds = status.ChangeTime.Seconds, Nanoseconds = (int)status.ChangeTime.Nanoseconds };
                rc = Libc.Ioctl(writable, Libc.XFS_IOC_SWAPEXT, &swap);
            }

            if (rc < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                return errno switch
                {
                    Errno.EBUSY or Errno.EFAULT => Skipped($"changed while copying (the kernel refused the exchange: {Libc.ErrnoName(errno)}; a writer, or a process that has it mapped); the file is as it was, run it again when it is idle"),
                    Errno.EINVAL => Skipped($"the kernel refused the exchange ({operation}: EINVAL; the two inodes' extent formats do not fit each other); the file is as it was"),
                    _ => throw FileOperationException.FromErrno(errno, operation, File.Path, "Cannot exchange the extents of", "The file is as it was."),
                };
            }

            if (method == DefragMethod.XfsExchangeRange)
            {
                RestoreTimes(writable, status);
            }

            return Finished(method, $"copied {SizeFormatter.Format(copied)} into a new copy of {copyExtents} extent(s) and exchanged the extents", copied, SharedBytesToUnshare);
        }

        /// <summary>
        /// xfs with reflink: copies the data into the contiguous mirror, then has the kernel remap each
        /// step of the file onto it (FIDEDUPERANGE: donor as source, the file as destination), which it
        /// does only where the bytes are still equal, under both files' locks. Each step is an ordinary
        /// logged remap, so a crash at any moment leaves the filesystem recoverable and the file's data
        /// whole (partly on old extents, partly on new ones). The unnamed donor is closed before the
        /// file is measured again: the file then holds the new extents alone.
        /// </summary>
        private unsafe DefragResult CopyAndRemap(OpenFile original, TemporaryFile donor, SafeFileDescriptor writable, FileStatus status, Action<long>? progress, CancellationToken cancel)
        {
            // Progress: the copy is the first half of the work, the remap (the kernel reads and compares
            // both) the second.
            long total = Math.Max(1, BytesToRewrite);
            long copied = DataCopy.Copy(original, donor.Handle, File.Path, status.Size, progress is null ? null : c => progress(Math.Min(c, total) / 2), cancel, preallocate: false);
            long done = 0, differing = 0;
            foreach (ByteRange range in DataCopy.DataRanges(writable, status.Size, File.Path))
            {
                for (long at = range.Start; at < range.End;)
                {
                    cancel.ThrowIfCancellationRequested();
                    long n = Math.Min(DedupeStep, range.End - at);
                    differing += Remap(donor.Handle, writable, at, n, done == 0);

                    // xfs reports the whole length even when it stopped early: FIEMAP below is the truth.
                    at += n;
                    done += n;
                    progress?.Invoke((total + Math.Min(done, total)) / 2);
                }
            }

            donor.Dispose(); // the unnamed copy's references go: the file holds the new extents alone
            string reason = $"copied {SizeFormatter.Format(copied)} into a new copy of {copyExtents} extent(s) and remapped the file onto it (FIDEDUPERANGE)"
                + (differing > 0 ? $"; {SizeFormatter.Format(differing)} changed while copying and stayed as it was" : string.Empty);
            return Finished(method, reason, copied, SharedBytesToUnshare);
        }

        /// <summary>
        /// One FIDEDUPERANGE step; where the kernel finds the bytes differ (a writer changed them since
        /// the copy), the step is halved down to 1 MiB so the rest is still remapped. Returns the bytes
        /// left as they were.
        /// </summary>
        private unsafe long Remap(SafeFileDescriptor donor, SafeFileDescriptor writable, long at, long n, bool first)
        {
            var args = new Libc.FileDedupeRangeOne
            {
                SourceOffset = (ulong)at,
                SourceLength = (ulong)n,
                DestinationCount = 1,
                DestinationFd = writable.DangerousGetHandle().ToInt64(),
                DestinationOffset = (ulong)at,
            };
            if (Libc.Ioctl(donor, Libc.FIDEDUPERANGE, &args) < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw FileOperationException.FromErrno(errno, "FIDEDUPERANGE", File.Path, first ? "Cannot remap the new extents into" : "Cannot remap the rest of the new extents into", first ? "The file is as it was." : "The data is intact; the file is partly defragmented.");
            }

            if (args.Status != Libc.FILE_DEDUPE_RANGE_DIFFERS)
            {
                return 0;
            }

            const long Smallest = 1L << 20;
            if (n <= Smallest)
            {
                return n;
            }

            long half = (n / 2 + blockSize - 1) / blockSize * blockSize;
            return Remap(donor, writable, at, half, first) + Remap(donor, writable, at + half, n - half, false);
        }

        /// <summary>The commit records the exchange like a write (new modification and change times): give the modification and access times back.</summary>
        private unsafe void RestoreTimes(SafeFileDescriptor writable, FileStatus status)
        {
            Libc.TimeSpec* times = stackalloc Libc.TimeSpec[2];
            times[0] = new Libc.TimeSpec { Seconds = status.AccessTime.Seconds, Nanoseconds = status.AccessTime.Nanoseconds };
            times[1] = new Libc.TimeSpec { Seconds = status.ModifyTime.Seconds, Nanoseconds = status.ModifyTime.Nanoseconds };
            if (Libc.FUtimens(writable, times) != 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "futimens", File.Path, "The extents were exchanged, but cannot restore the modification time of");
            }
        }

        /// <summary>ext4: moves the mirror's blocks under the file's data, one step at a time; the kernel copies each page.</summary>
        private unsafe DefragResult MoveExtents(SafeFileDescriptor donor, SafeFileDescriptor writable, long size, Action<long>? progress, CancellationToken cancel)
        {
            if (Libc.FSync(writable) != 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fsync", File.Path, "Cannot flush before defragmenting", "Nothing was changed.");
            }

            long stepBlocks = Math.Max(1, Options.StepSize / blockSize);
            long moved = 0;
            using OpenFile donorView = OpenFile.Borrow(donor, File.Path, File.FileSystem, size);
            foreach (RawExtent e in Fiemap.Read(donorView, 0, (ulong)RoundUp(size), sync: false))
            {
                long first = (long)e.Logical / blockSize;
                long last = (Math.Min((long)e.End, RoundUp(size)) + blockSize - 1) / blockSize;
                for (long block = first; block < last;)
                {
                    cancel.ThrowIfCancellationRequested();

                    // The kernel reads each page it moves on its own; ask for the step's data ahead, in large reads.
                    long steps = Math.Min(stepBlocks, last - block);
                    _ = Libc.PosixFadvise(writable, block * blockSize, steps * blockSize, Libc.POSIX_FADV_WILLNEED);
                    var args = new Libc.MoveExtent
                    {
                        DonorFd = (uint)donor.DangerousGetHandle().ToInt32(),
                        OrigStart = (ulong)block,
                        DonorStart = (ulong)block,
                        Length = (ulong)steps,
                    };
                    int busy = 0;
                    while (Libc.Ioctl(writable, Libc.EXT4_IOC_MOVE_EXT, &args) < 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        if ((errno == Errno.EBUSY && ++busy < 100) || errno == Errno.EINTR)
                        {
                            Thread.Sleep(10); // a page under writeback: the kernel asks to try again
                            continue;
                        }

                        if (args.MovedLength > 0)
                        {
                            break;
                        }

                        throw FileOperationException.FromErrno(errno, "EXT4_IOC_MOVE_EXT", File.Path, "Cannot move the new extents under", errno == Errno.EOPNOTSUPP ? "ext4 moves extents only for files in extent format (not ext3-style block maps, not on bigalloc). The data is intact." : "The data is intact; the file may be partly defragmented.");
                    }

                    long n = Math.Max(1, (long)args.MovedLength);
                    block += n;
                    moved += n * blockSize;
                    progress?.Invoke(Math.Min(moved, BytesToRewrite));
                }
            }

            long movedBytes = Math.Min(moved, BytesToRewrite);
            return Finished(method, $"moved {SizeFormatter.Format(movedBytes)} into {copyExtents} new extent(s)", movedBytes, 0);
        }
    }
}
