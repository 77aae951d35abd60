namespace Btrfs.Core
{
    using System;
    using System.Diagnostics;
    using System.Runtime.InteropServices;
    using System.Threading;
    using Btrfs.Interop;

    /// <summary>
    /// Invoke-BtrfsDefrag's Core for btrfs: a checked plan for one file (what would be rewritten,
    /// what stays shared, what it costs), then <see cref="Run"/>, which hands only the planned ranges
    /// to BTRFS_IOC_DEFRAG_RANGE in steps, reporting progress and stopping between steps.
    /// </summary>
    public sealed class BtrfsDefragmenter : IDisposable
    {
        private static int levelSupport; // 0 unknown, 1 yes, -1 no

        private readonly RegularFile file;
        private readonly DefragOptions options;
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private FragmentationCounter before = null!;

        private BtrfsDefragmenter(RegularFile file, DefragOptions options)
        {
            this.file = file;
            this.options = options;
        }

        /// <summary>The file.</summary>
        public string Path => file.Path;

        /// <summary>Why the file is skipped without calling the kernel, or null when there is work.</summary>
        public string? SkipReason { get; private set; }

        /// <summary>True when the skip deserves a warning (immutable, append-only, swapfile, inline-only), not only a verbose note.</summary>
        public bool SkipIsWarning { get; private set; }

        /// <summary>Bytes of extents that would be rewritten.</summary>
        public long BytesToRewrite { get; private set; }

        /// <summary>Bytes of small shared extents left alone.</summary>
        public long SharedBytesSkipped { get; private set; }

        /// <summary>Bytes of shared extents that would be rewritten and stop sharing (new space used).</summary>
        public long SharedBytesToUnshare { get; private set; }

        /// <summary>Free space now.</summary>
        public long AvailableBytes { get; private set; }

        /// <summary>
        /// Opens <paramref name="path"/> (never through a symbolic link), refuses what cannot be
        /// defragmented (not btrfs, read-only mount or snapshot) with <see cref="FileOperationException"/>,
        /// and plans: one FIEMAP pass (flushing delayed allocation first).
        /// </summary>
        public static BtrfsDefragmenter Prepare(string path, DefragOptions options)
        {
            ArgumentNullException.ThrowIfNull(options);
            ArgumentOutOfRangeException.ThrowIfLessThan(options.ExtentThreshold, 1);
            ArgumentOutOfRangeException.ThrowIfLessThan(options.StepSize, 4096);
            RegularFile file = RegularFile.Open(path, OpenOptions.NoFollow);
            var d = new BtrfsDefragmenter(file, options);
            try
            {
                d.Plan();
                return d;
            }
            catch
            {
                d.Dispose();
                throw;
            }
        }

        /// <summary>The result for a file that is skipped (or only previewed): nothing rewritten.</summary>
        public DefragResult Skipped(string reason) => new()
        {
            Path = file.Path,
            Method = DefragMethod.None,
            Skipped = true,
            Reason = reason,
            ExtentsBefore = before.ExtentCount,
            ExtentsAfter = before.ExtentCount,
            FragmentsBefore = before.FragmentCount,
            FragmentsAfter = before.FragmentCount,
            SmallExtentsBefore = before.SmallExtentCount,
            SmallExtentsAfter = before.SmallExtentCount,
            SharedBytesSkipped = SharedBytesSkipped,
            Duration = clock.Elapsed,
        };

        /// <summary>
        /// Rewrites the planned ranges in steps of <see cref="DefragOptions.StepSize"/>, then fsyncs
        /// and measures again. <paramref name="progress"/> gets the bytes handed to the kernel so far;
        /// cancellation stops after the current step (the file stays consistent: each step is whole).
        /// </summary>
        public DefragResult Run(Action<long>? progress = null, CancellationToken cancel = default)
        {
            if (SkipReason is not null)
            {
                return Skipped(SkipReason);
            }

            clock.Restart();
            var planner = new DefragPlanner(options, file.FileSystem.Kind, file.Size);
            long done = 0;
            foreach (ByteRange range in planner.Plan(RangeExtents()))
            {
                for (long pos = range.Start; pos < range.End;)
                {
                    cancel.ThrowIfCancellationRequested();
                    long len = Math.Min(options.StepSize, range.End - pos);
                    DefragStep(pos, len);
                    pos += len;
                    done += len;
                    progress?.Invoke(Math.Min(done, BytesToRewrite));
                }
            }

            if (Libc.FSync(file.Handle) != 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fsync", file.Path, "Cannot sync the defragmented file");
            }

            FragmentationCounter after = FragmentationAnalyzer.Count(file, options.ExtentThreshold, sync: false);
            return new DefragResult
            {
                Path = file.Path,
                Method = DefragMethod.BtrfsDefragRange,
                Skipped = false,
                Reason = $"rewrote {SizeFormatter.Format(planner.BytesToRewrite)} in extents below {SizeFormatter.Format(options.ExtentThreshold)}",
                ExtentsBefore = before.ExtentCount,
                ExtentsAfter = after.ExtentCount,
                FragmentsBefore = before.FragmentCount,
                FragmentsAfter = after.FragmentCount,
                SmallExtentsBefore = before.SmallExtentCount,
                SmallExtentsAfter = after.SmallExtentCount,
                BytesRewritten = planner.BytesToRewrite,
                SharedBytesSkipped = planner.SharedBytesSkipped,
                SharedBytesUnshared = planner.SharedBytesToUnshare,
                Duration = clock.Elapsed,
            };
        }

        /// <summary>Whether the kernel accepts BTRFS_DEFRAG_RANGE_COMPRESS_LEVEL (probed once per process).</summary>
        public bool CompressionLevelSupported()
        {
            if (levelSupport == 0)
            {
                // Unknown flags are refused with EOPNOTSUPP before anything else is looked at; with known
                // flags, a start at EOF is refused with EINVAL: a probe that changes nothing.
                var args = new Libc.BtrfsDefragRangeArgs
                {
                    Start = (ulong)file.Size,
                    Length = 4096,
                    Flags = Libc.BTRFS_DEFRAG_RANGE_COMPRESS | Libc.BTRFS_DEFRAG_RANGE_COMPRESS_LEVEL,
                    CompressType = (uint)DefragCompression.Zstd,
                    CompressLevel = 1,
                };
                int errno = Ioctl(ref args);
                levelSupport = errno == Libc.EOPNOTSUPP ? -1 : 1;
            }

            return levelSupport > 0;
        }

        /// <inheritdoc/>
        public void Dispose() => file.Dispose();

        private void Plan()
        {
            if (file.FileSystem.Kind != FileSystemKind.Btrfs)
            {
                throw new FileOperationException(
                    FileErrorKind.NotSupported,
                    Libc.EOPNOTSUPP,
                    "BTRFS_IOC_DEFRAG_RANGE",
                    file.Path,
                    $"Cannot defragment '{file.Path}': it is on {file.FileSystem.DisplayName}, and Invoke-BtrfsDefrag defragments files on btrfs only for now (xfs_fsr and e4defrag do it for xfs and ext4). Measure-Fragmentation measures it.");
            }

            FileGuards.ThrowIfReadOnly(file, "defragment");
            InodeFlags flags = InodeFlagsIo.Get(file.Handle, file.Path);
            if ((flags & InodeFlags.Immutable) == 0 && Libc.FAccessAt(Libc.AT_FDCWD, file.Path, Libc.W_OK, Libc.AT_EACCESS | Libc.AT_SYMLINK_NOFOLLOW) != 0
                && Marshal.GetLastPInvokeError() is Libc.EACCES or Libc.EPERM)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "faccessat(W_OK)", file.Path, "Cannot defragment", "Defragmenting rewrites the file's data, so it needs write permission on the file (or root). Nothing was changed.");
            }

            AvailableBytes = file.AvailableBytes();

            // One pass: the whole file for the figures, the requested range for the plan.
            before = new FragmentationCounter(options.ExtentThreshold, FileSystemKind.Btrfs, file.Size);
            var planner = new DefragPlanner(options, FileSystemKind.Btrfs, file.Size);
            foreach (ByteRange unused in planner.Plan(Counted(before)))
            {
                // Counting only: the ranges are planned again, streamed, when the file is rewritten.
            }

            before.Finish();
            BytesToRewrite = planner.BytesToRewrite;
            SharedBytesSkipped = planner.SharedBytesSkipped;
            SharedBytesToUnshare = planner.SharedBytesToUnshare;

            if ((flags & InodeFlags.Immutable) != 0)
            {
                Skip("immutable (chattr +i): left as it is", warning: true);
            }
            else if ((flags & InodeFlags.AppendOnly) != 0)
            {
                Skip("append-only (chattr +a): left as it is", warning: true);
            }
            else if (FileGuards.IsActiveSwapfile(file.Status))
            {
                Skip("an active swapfile (listed in /proc/swaps): never rewritten", warning: true);
            }
            else if (planner.InlineOnly)
            {
                Skip("inline-only: its data lives in the metadata, there are no extents to rewrite", warning: true);
            }
            else if (BytesToRewrite == 0)
            {
                string shared = SharedBytesSkipped > 0 ? $"; {SizeFormatter.Format(SharedBytesSkipped)} in small shared extents stays shared (-IncludeShared rewrites it)" : string.Empty;
                string what = options.Compress is null ? $"no unshared extents below {SizeFormatter.Format(options.ExtentThreshold)} that rewriting could join" : "no unshared data to recompress";
                Skip($"nothing to do: {what}{shared}", warning: false);
            }
        }

        private void Skip(string reason, bool warning)
        {
            SkipReason = reason;
            SkipIsWarning = warning;
        }

        /// <summary>The whole file's extents go to <paramref name="counter"/>; those in the requested range, cut to it, come out.</summary>
        private System.Collections.Generic.IEnumerable<RawExtent> Counted(FragmentationCounter counter)
        {
            ulong start = (ulong)options.Offset;
            ulong end = (ulong)options.End;
            foreach (RawExtent e in FiemapReader.Read(file, 0, ulong.MaxValue, sync: true))
            {
                counter.Add(e);
                if (e.End > start && e.Logical < end)
                {
                    yield return FiemapReader.ClipToRange(e, start, end);
                }
            }
        }

        private System.Collections.Generic.IEnumerable<RawExtent> RangeExtents()
        {
            ulong start = (ulong)options.Offset;
            ulong length = options.Length is long l ? (ulong)l : ulong.MaxValue - start;
            return FiemapReader.Read(file, start, length, sync: false);
        }

        private void DefragStep(long start, long length)
        {
            var args = new Libc.BtrfsDefragRangeArgs
            {
                Start = (ulong)start,
                Length = (ulong)length,
                Flags = options.Flush ? Libc.BTRFS_DEFRAG_RANGE_START_IO : 0,
                ExtentThreshold = (uint)Math.Min(options.ExtentThreshold, uint.MaxValue),
            };
            if (options.Compress is DefragCompression c)
            {
                args.Flags |= Libc.BTRFS_DEFRAG_RANGE_COMPRESS;
                args.CompressType = (uint)c;
                if (options.CompressionLevel is int level && CompressionLevelSupported())
                {
                    args.Flags |= Libc.BTRFS_DEFRAG_RANGE_COMPRESS_LEVEL;
                    args.CompressLevel = (sbyte)Math.Clamp(level, sbyte.MinValue, sbyte.MaxValue);
                }
            }

            int errno = Ioctl(ref args);
            if (errno != 0)
            {
                throw FileOperationException.FromErrno(
                    errno,
                    "BTRFS_IOC_DEFRAG_RANGE",
                    file.Path,
                    "Cannot defragment",
                    errno switch
                    {
                        Libc.EPERM or Libc.EACCES => "Defragmenting needs write permission on the file (or root).",
                        Libc.EROFS => "The file is in a read-only snapshot or on a read-only mount.",
                        Libc.ENOSPC => "The filesystem is full; free some space first.",
                        _ => null,
                    });
            }
        }

        private unsafe int Ioctl(ref Libc.BtrfsDefragRangeArgs args)
        {
            fixed (Libc.BtrfsDefragRangeArgs* p = &args)
            {
                return Libc.Ioctl(file.Handle, Libc.BTRFS_IOC_DEFRAG_RANGE, p) < 0 ? Marshal.GetLastPInvokeError() : 0;
            }
        }
    }
}
