namespace Btrfs.Core
{
    using System;
    using Btrfs.Kernel;

    /// <summary>How a copy was made.</summary>
    public enum ReflinkMethod
    {
        /// <summary>The extents are shared (FICLONE / FICLONERANGE): no data was copied.</summary>
        Reflink,

        /// <summary>The data was copied (reflink impossible and -Fallback Copy given).</summary>
        Copy,

        /// <summary>
        /// -Recurse: another name of a file already copied in this run (a hard link in the source), made a
        /// hard link to that copy, as cp -a does; nothing was cloned.
        /// </summary>
        HardLink,
    }

    /// <summary>What to do when a reflink is impossible.</summary>
    public enum ReflinkFallback
    {
        /// <summary>Nothing: an error says why.</summary>
        None,

        /// <summary>Copy the data instead, like cp --reflink=auto.</summary>
        Copy,
    }

    /// <summary>How to make one reflink copy.</summary>
    public sealed record ReflinkOptions
    {
        /// <summary>Replace (or, with a range, write into) an existing destination.</summary>
        public bool Force { get; init; }

        /// <summary>Replacing a destination where no write lease can prove that nobody has it open: rely on the /proc scan alone.</summary>
        public bool AssumeNotInUse { get; init; }

        /// <summary>What to do when a reflink is impossible.</summary>
        public ReflinkFallback Fallback { get; init; }

        /// <summary>First byte of the source range; null for a whole-file copy.</summary>
        public long? SourceOffset { get; init; }

        /// <summary>Bytes of the range; null to the source's end.</summary>
        public long? Length { get; init; }

        /// <summary>Where the range goes in the destination; null for the source offset.</summary>
        public long? DestinationOffset { get; init; }

        /// <summary>Keep mode, owner, group and timestamps (cp -p).</summary>
        public bool Preserve { get; init; }

        /// <summary>A source with more extents than this gets a warning: a clone costs time per extent.</summary>
        public long ManyExtents { get; init; } = 10_000;

        /// <summary>
        /// A run, not a preview: a replaced destination's bind mounts (every mount namespace read, milliseconds a
        /// file) are looked for once, right before the exchange of names, as they always are there, and not also
        /// when the copy is checked (a preview must say it then).
        /// </summary>
        internal bool MountsLookedForAtExchange { get; init; }

        internal bool IsRange => SourceOffset is not null || Length is not null || DestinationOffset is not null;
    }

    /// <summary>New-BtrfsReflink's result: one per file created (or written into). Every property is a scalar.</summary>
    public sealed class ReflinkResult
    {
        /// <summary>The new (or written) file: pipe it on to Get-BtrfsExtent, Test-NoCow or Measure-Fragmentation.</summary>
        public string Path { get; init; } = string.Empty;

        /// <summary>The file's name (the last part of <see cref="Path"/>), as the table shows it.</summary>
        public string Name => System.IO.Path.GetFileName(Path);

        /// <summary>The source file.</summary>
        public string Source { get; init; } = string.Empty;

        /// <summary>Bytes cloned or copied.</summary>
        public long Length { get; init; }

        /// <summary>
        /// Bytes of the new file in extents FIEMAP reports as shared: measured the first time it is read
        /// (one FIEMAP of the file then), so a run that only needs the copies does not pay for it per file.
        /// </summary>
        public long SharedBytes
        {
            get => shared ??= MeasureShared();
            init => shared = value;
        }

        /// <summary>The figure when the copy already measured it; negative: measure when asked.</summary>
        internal long SharedBytesKnown
        {
            init => shared = value < 0 ? null : value;
        }

        /// <summary>False where the destination's filesystem has no FIEMAP (a copy onto tmpfs): nothing is shared there.</summary>
        internal bool CanShare { get; init; } = true;

        /// <summary>The copy's inode: SharedBytes measures the file at Path only while it is still that copy.</summary>
        internal FileStatus? Identity { get; init; }

        /// <summary>Reflink, or Copy when the data had to be copied.</summary>
        public ReflinkMethod Method { get; init; }

        /// <summary>Wall time.</summary>
        public TimeSpan Duration { get; init; }

        private long? shared;

        private long MeasureShared()
        {
            if (!CanShare || Path.Length == 0)
            {
                return 0;
            }

            try
            {
                using OpenFile file = OpenFile.Open(Path, OpenOptions.NoFollow);
                return Identity is FileStatus made && !file.Status.SameInode(made)
                    ? 0 // the name now holds another file: the copy made is gone
                    : Fiemap.Shared(file.Handle, Path).Bytes;
            }
            catch (FileOperationException)
            {
                return 0; // gone or replaced since: nothing of it is known to be shared
            }
        }
    }

    /// <summary>
    /// New-BtrfsReflink -Recurse's result for a whole tree (without -PassThru): written when the copy is
    /// complete and, for a new destination, has appeared under its name. Every property is a scalar.
    /// </summary>
    public sealed class ReflinkTreeResult
    {
        /// <summary>The destination tree: pipe it on (with -Recurse) to Test-NoCow, Measure-Fragmentation or Measure-BtrfsUsage.</summary>
        public string Path { get; init; } = string.Empty;

        /// <summary>The source tree.</summary>
        public string Source { get; init; } = string.Empty;

        /// <summary>Regular files cloned (or copied).</summary>
        public long Files { get; init; }

        /// <summary>Of those, files whose data was copied (the Copy fallback) instead of shared.</summary>
        public long CopiedFiles { get; init; }

        /// <summary>Directories created below the destination (not counting it).</summary>
        public long Directories { get; init; }

        /// <summary>Symbolic links recreated.</summary>
        public long SymbolicLinks { get; init; }

        /// <summary>
        /// Names made hard links to a file already copied in this run, because they are hard links of one
        /// file in the source (as cp -a keeps them); not counted in <see cref="Files"/>.
        /// </summary>
        public long HardLinks { get; init; }

        /// <summary>Bytes cloned or copied (not named Length: a tree result piped on must not bind a file range).</summary>
        public long Bytes { get; init; }

        /// <summary>Entries that failed (each reported as an error).</summary>
        public long Errors { get; init; }

        /// <summary>
        /// True: the destination did not exist, so the tree was built under a hidden name beside it and
        /// appeared with one rename when the copy had finished (entries that failed are counted in Errors). False: it existed and the files were added to it one by one,
        /// each appearing whole under its name.
        /// </summary>
        public bool AppearedWhole { get; init; }

        /// <summary>Wall time, including the one write-back (syncfs) at the end.</summary>
        public TimeSpan Duration { get; init; }
    }

    /// <summary>What one tree's copy did so far, counted as it goes, for its <see cref="ReflinkTreeResult"/>.</summary>
    internal sealed class ReflinkTreeTally
    {
        internal long Files { get; set; }

        internal long CopiedFiles { get; set; }

        internal long Directories { get; set; }

        internal long SymbolicLinks { get; set; }

        internal long HardLinks { get; set; }

        internal long Bytes { get; set; }

        internal long Errors { get; set; }

        internal ReflinkTreeResult ToResult(string path, string source, bool appearedWhole, TimeSpan duration) => new()
        {
            Path = path,
            Source = source,
            Files = Files,
            CopiedFiles = CopiedFiles,
            Directories = Directories,
            SymbolicLinks = SymbolicLinks,
            HardLinks = HardLinks,
            Bytes = Bytes,
            Errors = Errors,
            AppearedWhole = appearedWhole,
            Duration = duration,
        };
    }
}
