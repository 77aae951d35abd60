namespace Btrfs.Core
{
    using System;
    using System.Diagnostics;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// Invoke-BtrfsDefrag's Core: a checked plan for one file (what would be rewritten, what stays
    /// shared, what it costs), then <see cref="Run"/>. <see cref="Prepare"/> picks the mechanism by
    /// filesystem: btrfs rewrites ranges in place (<see cref="BtrfsDefragmenter"/>), xfs and ext4 get a
    /// preallocated copy swapped in whole, the xfs_fsr way (<see cref="CopyExchangeDefragmenter"/>).
    /// </summary>
    public abstract class Defragmenter : IDisposable
    {
        private protected Defragmenter(OpenFile file, DefragOptions options)
        {
            File = file;
            Options = options;
        }

        /// <summary>The file.</summary>
        public string Path => File.Path;

        /// <summary>How the file would be defragmented.</summary>
        public abstract DefragMethod Method { get; }

        /// <summary>Why the file is skipped without changing it, or null when there is work.</summary>
        public string? SkipReason { get; private set; }

        /// <summary>What kind of skip <see cref="SkipReason"/> is (None when there is work).</summary>
        public DefragSkipReason SkipKind { get; private set; }

        /// <summary>True when the skip deserves a warning (immutable, append-only, swapfile...), not only a verbose note.</summary>
        public bool SkipIsWarning { get; private set; }

        /// <summary>Bytes that would be rewritten (copied or moved).</summary>
        public long BytesToRewrite { get; private protected set; }

        /// <summary>Bytes of shared extents left alone (they stay shared).</summary>
        public long SharedBytesSkipped { get; private protected set; }

        /// <summary>Bytes of shared extents that would be rewritten and stop sharing (new space used).</summary>
        public long SharedBytesToUnshare { get; private protected set; }

        /// <summary>FIEMAP extents before (the plan's measurement).</summary>
        public long ExtentsBefore => Before.ExtentCount;

        /// <summary>Fragments (runs of physically contiguous extents) before.</summary>
        public long FragmentsBefore => Before.FragmentCount;

        /// <summary>The file as it was opened.</summary>
        internal FileStatus Status => File.Status;

        /// <summary>statfs f_fsid of the file's filesystem (what a state file keys files by, with the inode).</summary>
        internal ulong FileSystemId => Files.FileSystemIdOf(File.Handle);

        /// <summary>The extent threshold as it acts here, for a message (<see cref="FragmentationCounter.ThresholdText"/>).</summary>
        internal string ThresholdText => FragmentationCounter.ThresholdText(Options.ExtentThreshold, File.FileSystem.Kind);

        /// <summary>The file as it is now (after a defragmentation), or null when it cannot be examined.</summary>
        internal FileStatus? StatusNow() => FileStatus.Of(File.Handle);

        /// <summary>
        /// A descriptor of its own for the directory the file was opened in, to sync its filesystem later;
        /// null when it has none, none can be had (out of descriptors), or the directory was only named (this
        /// user may search it but not read it: syncfs refuses such a descriptor).
        /// </summary>
        internal SafeFileDescriptor? TryDuplicateDirectory()
        {
            try
            {
                return File.Directory is SafeFileDescriptor dir && !DirectoryHandle.IsNamedOnly(dir) ? DirectoryHandle.Duplicate(dir, File.Path) : null;
            }
            catch (FileOperationException)
            {
                return null;
            }
        }

        /// <summary>syncfs of the file's filesystem now; a failure leaves the changes in its log, written later anyway.</summary>
        internal void SyncFileSystem() => _ = Files.TrySyncFileSystem(File.Handle);

        /// <summary>Free space now.</summary>
        public long AvailableBytes { get; private protected set; }

        /// <summary>New space the rewrite needs while it runs.</summary>
        public long BytesNeeded { get; private protected set; }

        /// <summary>
        /// What a run the budget stopped between steps had rewritten by then, for the run's summary:
        /// on ext4 the bytes moved, on btrfs those measured rewritten after a write-back, on xfs those remapped;
        /// 0 where the file is unchanged until the one exchange at the end.
        /// </summary>
        internal long BytesRewrittenSoFar
        {
            get
            {
                // What the last steps before a stop moved is measured only when asked for (the budget's stop asks; Ctrl+C
                // does not wait for it): it needs their data written back. Not measurable (the file gone, an I/O error):
                // what was measured before.
                if (unmeasuredSteps is Func<long> measure)
                {
                    unmeasuredSteps = null;
                    try
                    {
                        bytesRewrittenSoFar += measure();
                    }
                    catch (FileOperationException)
                    {
                    }
                }

                return bytesRewrittenSoFar;
            }

            private protected set => bytesRewrittenSoFar = value;
        }

        private long bytesRewrittenSoFar;

        /// <summary>Measures what the steps since the last measure moved, for <see cref="BytesRewrittenSoFar"/> (set where a run stopped between steps).</summary>
        private protected Func<long>? unmeasuredSteps;

        private protected OpenFile File { get; }

        /// <summary>What to do, as asked; a mechanism may narrow it for this file when it plans (btrfs: -Compress on a No_COW file).</summary>
        internal DefragOptions Options { get; private protected set; }

        /// <summary>Why this file is done otherwise than asked, for -WhatIf and the result (null when as asked).</summary>
        internal string? PlanNote { get; private protected set; }

        private protected Stopwatch Clock { get; } = Stopwatch.StartNew();

        private protected FragmentationCounter Before { get; set; } = null!;

        /// <summary>
        /// Opens <paramref name="path"/> (never through a symbolic link), refuses what cannot be
        /// defragmented (another filesystem, read-only mount or snapshot, no write permission, options
        /// the mechanism cannot honour) with <see cref="FileOperationException"/>, and plans.
        /// </summary>
        public static Defragmenter Prepare(string path, DefragOptions options)
        {
            ArgumentNullException.ThrowIfNull(options);
            return Prepare(OpenFile.Open(path, OpenOptions.NoFollow), options);
        }

        /// <summary>As <see cref="Prepare(string, DefragOptions)"/>, for a file the tree walker found: opened relative to its directory.</summary>
        internal static Defragmenter Prepare(FileLocation location, DefragOptions options)
        {
            ArgumentNullException.ThrowIfNull(options);
            return Prepare(OpenFile.Open(location, OpenOptions.NoFollow | OpenOptions.KnownRegular), options);
        }

        private static Defragmenter Prepare(OpenFile file, DefragOptions options)
        {
            Defragmenter? d = null;
            try
            {
                ArgumentOutOfRangeException.ThrowIfLessThan(options.ExtentThreshold, 1);
                ArgumentOutOfRangeException.ThrowIfLessThan(options.StepSize, 4096);
                d = file.FileSystem.Kind switch
                {
                    FileSystemKind.Btrfs => new BtrfsDefragmenter(file, options),
                    FileSystemKind.Xfs => new XfsDefragmenter(file, options),
                    FileSystemKind.Ext4 => new Ext4Defragmenter(file, options),
                    _ => throw new FileOperationException(
                        FileErrorKind.NotSupported,
                        Errno.EOPNOTSUPP,
                        "defragment",
                        file.Path,
                        $"Cannot defragment '{file.Path}': it is on {file.FileSystem.DisplayName}; Invoke-BtrfsDefrag defragments files on btrfs, xfs and ext4. Measure-Fragmentation measures it where FIEMAP works.")
                    {
                        SameForFileSystem = true, // every file there is refused the same way: one error for a tree (a hostile test: one per file)
                    },
                };
                d.Plan();
                return d;
            }
            catch
            {
                if (d is not null)
                {
                    d.Dispose();
                }
                else
                {
                    file.Dispose();
                }

                throw;
            }
        }

        /// <summary>The error for a file that shrank while it was defragmented (the kernel then says EINVAL for the step past its end).</summary>
        private protected static FileOperationException Truncated(OpenFile file, long sizeBefore, FileOperationException cause) =>
            new(
                FileErrorKind.ChangedDuringCopy,
                cause.Errno,
                cause.Operation,
                file.Path,
                $"Cannot defragment '{file.Path}' further: it was truncated while it was being defragmented ({sizeBefore} bytes before, {file.Restat().Size} now). Its data is as the writer left it; run it again when it is idle.",
                cause);

        /// <summary>The result for a file that is skipped (or only previewed): nothing rewritten.</summary>
        public DefragResult Skipped(DefragSkipReason kind, string reason) => Result(DefragMethod.None, kind, reason, Before, 0, 0);

        /// <summary>The result for a file skipped for the reason planned (<see cref="SkipKind"/>, <see cref="SkipReason"/>).</summary>
        public DefragResult Skipped() => Skipped(SkipKind, SkipReason ?? string.Empty);

        /// <summary>
        /// Defragments. <paramref name="progress"/> gets the bytes done so far; cancellation stops
        /// between steps and leaves the file's data as it was.
        /// </summary>
        public abstract DefragResult Run(Action<long>? progress = null, CancellationToken cancel = default);

        /// <summary>Whether the kernel accepts a compression level (btrfs only).</summary>
        public virtual bool CompressionLevelSupported() => false;

        /// <inheritdoc/>
        public virtual void Dispose() => File.Dispose();

        /// <summary>Plans the work, or sets <see cref="SkipReason"/>.</summary>
        private protected abstract void Plan();

        private protected void Skip(DefragSkipReason kind, string reason, bool warning)
        {
            SkipKind = kind;
            SkipReason = reason;
            SkipIsWarning = warning;
        }

        /// <summary>
        /// The checks every mechanism makes first: the file can be written (not a read-only mount or
        /// snapshot, write permission), and the free space. Returns the inode flags.
        /// </summary>
        private protected InodeFlags CheckWritable()
        {
            FileGuards.ThrowIfReadOnly(File, "defragment", walkedItem: true);
            InodeFlags flags = InodeAttributes.Get(File.Handle, File.Path);
            if ((flags & InodeFlags.Immutable) == 0 && !Files.MayWrite(File.Directory, File.Name, File.Path, out int errno))
            {
                throw FileOperationException.FromErrno(errno, "faccessat(W_OK)", File.Path, "Cannot defragment", "Defragmenting rewrites the file's data, so it needs write permission on the file (or root). Nothing was changed.");
            }

            AvailableBytes = File.AvailableBytes();
            return flags;
        }

        /// <summary>Skips files that must never be rewritten; true when one was skipped.</summary>
        private protected bool SkipUnchangeable(InodeFlags flags)
        {
            if ((flags & InodeFlags.Immutable) != 0)
            {
                Skip(DefragSkipReason.Immutable, "immutable (chattr +i): left as it is", warning: true);
            }
            else if ((flags & InodeFlags.AppendOnly) != 0)
            {
                Skip(DefragSkipReason.AppendOnly, "append-only (chattr +a): left as it is", warning: true);
            }
            else if (FileGuards.IsActiveSwapfile(File.Status))
            {
                Skip(DefragSkipReason.ActiveSwapfile, "an active swapfile (listed in /proc/swaps): never rewritten", warning: true);
            }

            return SkipReason is not null;
        }

        /// <summary>
        /// Skips (true) a swap area that is not in use: a file whose first page holds mkswap's signature and a version 1
        /// header (what swapon takes; the signature alone, in random data, is none). Rewritten, its
        /// data would move, and a resume_offset= given to the kernel for hibernation (the physical offset of its first
        /// page) would name the old place: the next resume would not find the image (a hostile review: a scheduled run
        /// moved an inactive swapfile's resume offset from 147231 to 120997 without a word). Read only for a file the
        /// plan would rewrite (one page).
        /// </summary>
        private protected bool SkippedAsSwapArea()
        {
            int page = Environment.SystemPageSize;
            if (File.Size < 10L * page)
            {
                return false; // smaller than any swap area mkswap makes
            }

            // Read without moving the access time (a review: every file planned, -WhatIf too; ReadHeader keeps it where
            // this user may); the rewrite itself never moved it.
            if (SwapfileInspector.ReadHeader(File, page) is { Version: 1 }) // as swapon takes it (a signature alone, in random data, is none; a hostile review)
            {
                Skip(DefragSkipReason.SwapArea, "a swap area (mkswap's signature), not in use: moving its data would change its resume offset, which hibernation (resume_offset=) depends on; left as it is. Make a new one with New-BtrfsSwapfile if it must be contiguous", warning: true);
            }

            return SkipReason is not null;
        }

        /// <summary>
        /// Whether the file is fsynced before it is measured again: where the new extents exist only once
        /// the pages are written back (btrfs: DEFRAG_RANGE dirties the pages), or where the move is not a
        /// transaction of its own (ext4). xfs says no (<see cref="XfsDefragmenter"/>).
        /// </summary>
        internal virtual bool SyncWhenFinished => true;

        /// <summary>
        /// The bytes written so far when the progress callback says <paramref name="progress"/>: the same for every
        /// mechanism that reports what it wrote; a throttle holds its rate to this, not to the progress shown.
        /// </summary>
        internal virtual long WrittenFor(long progress) => progress;

        /// <summary>
        /// Whether what a writer changes during the run stays on the old extents between the new ones (the
        /// remap on reflink xfs), so that more fragments afterwards mean a writer: the Reason says so. Elsewhere
        /// more fragments can be the rewrite itself (btrfs moves small extents that were side by side).
        /// </summary>
        private protected virtual bool WriterKeepsOldExtents => false;

        /// <summary>fsyncs the file (where <see cref="SyncWhenFinished"/>) and measures it again for the result.</summary>
        /// <summary>
        /// The bytes of [<paramref name="start"/>, + <paramref name="length"/>) in shared extents now (one FIEMAP), where the
        /// plan left shared extents alone (0 with -IncludeShared): what a snapshot or reflink copy made while the file is
        /// rewritten shares, asked just before each step or exchange. (Before: asked once, at planning; what became shared
        /// meanwhile was rewritten and stopped being shared, SharedBytesUnshared 0. A hostile test.)
        /// </summary>
        private protected long SharedNow(long start, long length)
        {
            long shared = 0;
            if (!Options.IncludeShared)
            {
                foreach (RawExtent e in Fiemap.Read(File, (ulong)start, (ulong)length, sync: false))
                {
                    shared += (e.Flags & ExtentFlags.Shared) != 0 ? (long)e.Length : 0;
                }
            }

            return shared;
        }

        private protected DefragResult Finished(DefragMethod method, string reason, long rewritten, long unshared, bool incomplete = false)
        {
            if (SyncWhenFinished)
            {
                File.Flush("Cannot sync the defragmented file");
            }

            FragmentationCounter after = FragmentationAnalyzer.Count(File, Options.ExtentThreshold, sync: false);
            if (after.FragmentCount > Before.FragmentCount && WriterKeepsOldExtents)
            {
                // What the outcome worked out beforehand excludes, unless a writer changed parts meanwhile (they
                // stay on their old extents, between the new ones): said, not hidden in the figures.
                reason += $"; it now has more fragments than before ({Before.FragmentCount} -> {after.FragmentCount}), as when a writer changes it meanwhile (what it changed stays where it was): run it again when it is idle";
            }
            else if (after.FragmentCount > Before.FragmentCount && Options.Compress is not null && rewritten > 0)
            {
                // -Compress rewrites for compression, not for layout: data it could not shrink can come out in more pieces
                // (a hostile review: 1 -> 13 fragments for random data, reported as any other rewrite).
                reason += $"; it now has more fragments than before ({Before.FragmentCount} -> {after.FragmentCount}): btrfs compresses in pieces of at most 128 KiB and stores each piece that does not shrink as it is, not always next to the one before; without -Compress a rewrite joins them again";
            }
            else if (NoGain(after, rewritten, incomplete))
            {
                // The kernel found no longer free space than the extents it replaced (btrfs decides where, after the
                // rewrite): said, and a scheduled run does not rewrite it again while it is unchanged. (Before: reported
                // as any other rewrite, and every pass and night rewrote it again, 64 -> 64 extents; a hostile review.)
                reason += $"; no improvement: it has {after.ExtentCount} extents in {after.FragmentCount} fragments (it had {Before.ExtentCount} in {Before.FragmentCount}), as the free space is as fragmented as the file (btrfs filesystem usage shows it; btrfs balance start -dusage=50 gathers free space)";
            }

            return Result(method, DefragSkipReason.None, reason, after, rewritten, unshared, incomplete);
        }

        /// <summary>
        /// For a preview (-WhatIf, -Confirm's question) of a rewrite that needs more than was free when it was planned: the
        /// free space read again, after a commit where <paramref name="commit"/> (btrfs counts what was freed just now only
        /// then), as the run's check reads it, so the preview says what the run will do (a hostile review: "it would be
        /// refused (InsufficientSpace)", 39.7 MiB free, for a file the run then rewrote with 117 MiB free after the
        /// commit). The caller commits once a filesystem: a second commit frees nothing new (a review: a commit per file).
        /// </summary>
        internal void ReadSpaceAgain(bool commit)
        {
            if (BytesNeeded > AvailableBytes)
            {
                AvailableBytes = commit ? File.AvailableBytes(BytesNeeded) : File.AvailableBytes();
            }
        }

        /// <summary>
        /// At the file's turn (after the choices that leave a file alone), with the space free now: refuses a file whose
        /// rewrite needs more than is free (<paramref name="needs"/> says what it needs and why; <paramref name="advice"/>
        /// what to do), before anything is written; -WhatIf said so from the plan's figures.
        /// </summary>
        private protected void ThrowIfSpaceShort(string needs, string advice)
        {
            AvailableBytes = File.AvailableBytes(BytesNeeded);
            if (BytesNeeded > AvailableBytes)
            {
                throw new FileOperationException(
                    FileErrorKind.InsufficientSpace,
                    Errno.ENOSPC,
                    "statfs",
                    File.Path,
                    $"Cannot defragment '{File.Path}': {needs}, and {SizeFormatter.Format(AvailableBytes)} is free. {advice} Nothing was changed.");
            }
        }

        /// <summary>
        /// btrfs rewrote it (not to recompress, and all of it that was asked), with no fewer extents and no fewer fragments
        /// after, and nothing wrote to it meanwhile (a writer's changes stay where they are written, between the new
        /// extents: that is no sign of the free space, and a file a writer made worse is not to be left alone for it; a
        /// hostile review). xfs and ext4 find no improvement before they write anything (NoImprovement, skipped).
        /// </summary>
        private bool NoGain(FragmentationCounter after, long rewritten, bool incomplete) =>
            File.FileSystem.Kind == FileSystemKind.Btrfs && !incomplete && rewritten > 0 && Options.Compress is null
            && after.FragmentCount >= Before.FragmentCount && after.ExtentCount >= Before.ExtentCount
            && FileStatus.Of(File.Handle) is FileStatus now && now.Size == File.Status.Size && now.ModifyTime == File.Status.ModifyTime;

        /// <summary>The one way a result is made: the figures before, <paramref name="after"/> (the same counter when nothing was rewritten), and what was done.</summary>
        private DefragResult Result(DefragMethod method, DefragSkipReason skipped, string reason, FragmentationCounter after, long rewritten, long unshared, bool incomplete = false) => new()
        {
            Path = File.Path,
            Incomplete = incomplete,
            NoImprovement = method == DefragMethod.BtrfsDefragRange && NoGain(after, rewritten, incomplete),
            Method = method,
            Skipped = method == DefragMethod.None,
            SkipReason = skipped,
            Reason = reason,
            ExtentsBefore = Before.ExtentCount,
            ExtentsAfter = after.ExtentCount,
            FragmentsBefore = Before.FragmentCount,
            FragmentsAfter = after.FragmentCount,
            SmallExtentsBefore = Before.SmallExtentCount,
            SmallExtentsAfter = after.SmallExtentCount,
            BytesRewritten = rewritten,
            SharedBytesSkipped = SharedBytesSkipped,
            SharedBytesUnshared = unshared,
            Duration = Clock.Elapsed,
        };
    }
}
