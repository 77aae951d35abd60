namespace Btrfs.Core
{
    using System;
    using Btrfs.Kernel;

    /// <summary>Compression for a defragmentation that recompresses (btrfs).</summary>
    public enum DefragCompression
    {
        /// <summary>zlib (btrfs compress_type 1).</summary>
        Zlib = 1,

        /// <summary>LZO (btrfs compress_type 2).</summary>
        Lzo = 2,

        /// <summary>Zstandard (btrfs compress_type 3).</summary>
        Zstd = 3,
    }

    /// <summary>How a file was defragmented.</summary>
    public enum DefragMethod
    {
        /// <summary>Nothing was rewritten (skipped or previewed).</summary>
        None,

        /// <summary>BTRFS_IOC_DEFRAG_RANGE on the ranges chosen.</summary>
        BtrfsDefragRange,

        /// <summary>A preallocated copy swapped in with XFS_IOC_SWAPEXT.</summary>
        XfsSwapExtents,

        /// <summary>A preallocated copy swapped in with XFS_IOC_EXCHANGE_RANGE.</summary>
        XfsExchangeRange,

        /// <summary>xfs with reflink: the file's ranges remapped onto a contiguous copy with FIDEDUPERANGE (the kernel compares the bytes), crash-safe.</summary>
        XfsDedupeRange,

        /// <summary>Donor blocks moved in with EXT4_IOC_MOVE_EXT.</summary>
        Ext4MoveExtents,
    }

    /// <summary>Why a file was left as it is (Invoke-BtrfsDefrag's <see cref="DefragResult.SkipReason"/>).</summary>
    public enum DefragSkipReason
    {
        /// <summary>Not skipped: the file was defragmented.</summary>
        None,

        /// <summary>Nothing to gain: no data in extents shorter than the threshold, or already the fewest extents possible.</summary>
        NothingToDo,

        /// <summary>Fewer fragments than -MinimumFragments.</summary>
        BelowMinimum,

        /// <summary>Shares data with reflink copies (or snapshots), and the only way to defragment it would unshare it: xfs and ext4 exchange the whole file; on btrfs what it has to rewrite below the threshold is all shared, and -IncludeShared would rewrite it.</summary>
        Shared,

        /// <summary>Immutable (chattr +i).</summary>
        Immutable,

        /// <summary>Append-only (chattr +a).</summary>
        AppendOnly,

        /// <summary>An active swapfile.</summary>
        ActiveSwapfile,

        /// <summary>Its data lives inline in the metadata (btrfs): no extents.</summary>
        InlineOnly,

        /// <summary>Marked no-defrag (xfs chattr +f), as xfs_fsr honours it.</summary>
        NoDefragFlag,

        /// <summary>The only mechanism on this filesystem is not crash-safe (xfs without reflink and rmapbt).</summary>
        UnsafeOnThisFileSystem,

        /// <summary>With a new copy's extents the file would not have fewer extents or fragments, or would have more of either (the free space is as fragmented, or, on reflink xfs, preallocated space lies between the data).</summary>
        NoImprovement,

        /// <summary>Written to (or changed) while it was being copied: left as the writer left it, measured again next time.</summary>
        ChangedWhileCopying,

        /// <summary>The kernel refused the exchange (the two inodes' formats do not fit).</summary>
        ExchangeRefused,

        /// <summary>A scheduled run may not rewrite it: it is in a read-only snapshot, or this user has no write permission (a one-file run reports that as an error; a read-only filesystem is an error in both).</summary>
        NotWritable,

        /// <summary>The filesystem has no online defragmentation for it: ext4 with data journalling (data=journal, chattr +j), where the kernel refuses EXT4_IOC_MOVE_EXT.</summary>
        NotSupportedHere,

        /// <summary>A swap area not in use (mkswap's signature and a version 1 header in its first page): moving its data would change the resume offset hibernation reads.</summary>
        SwapArea,
    }

    /// <summary>What to defragment and how.</summary>
    public sealed record DefragOptions
    {
        /// <summary>The default per-call step: 64 MiB.</summary>
        public const long DefaultStepSize = 64L << 20;

        /// <summary>Extents shorter than this are rewritten (capped at the largest extent the filesystem makes).</summary>
        public long ExtentThreshold { get; init; } = FragmentationAnalyzer.DefaultThreshold;

        /// <summary>Recompress with this algorithm (every unshared data extent in the range is rewritten).</summary>
        public DefragCompression? Compress { get; init; }

        /// <summary>Compression level, where the kernel accepts one.</summary>
        public int? CompressionLevel { get; init; }

        /// <summary>First byte of the range.</summary>
        public long Offset { get; init; }

        /// <summary>Bytes from <see cref="Offset"/>; null to the end of the file.</summary>
        public long? Length { get; init; }

        /// <summary>Bytes per kernel call: what makes progress and Ctrl+C possible.</summary>
        public long StepSize { get; init; } = DefaultStepSize;

        /// <summary>Start writeback with every call (BTRFS_DEFRAG_RANGE_START_IO, btrfs fi defrag -f).</summary>
        public bool Flush { get; init; }

        /// <summary>Also rewrite extents shared with reflink copies or snapshots (they stop sharing: new space is used).</summary>
        public bool IncludeShared { get; init; }

        internal long End => Length is long l ? (Offset > long.MaxValue - l ? long.MaxValue : Offset + l) : long.MaxValue;
    }

    /// <summary>Invoke-BtrfsDefrag's result for one file. Every property is a scalar.</summary>
    public sealed class DefragResult
    {
        /// <summary>The file.</summary>
        public string Path { get; init; } = string.Empty;

        /// <summary>The file's name (the last part of <see cref="Path"/>), as the table shows it.</summary>
        public string Name => System.IO.Path.GetFileName(Path);

        /// <summary>How it was defragmented (None when skipped).</summary>
        public DefragMethod Method { get; init; }

        /// <summary>Nothing was rewritten.</summary>
        public bool Skipped { get; init; }

        /// <summary>
        /// Defragmented in part: a writer changed the file meanwhile and the rest stayed as it was. A scheduled run does
        /// not record it as done (it is measured again next time).
        /// </summary>
        internal bool Incomplete { get; init; }

        /// <summary>Rewritten (not to recompress), and no fewer extents or fragments came of it: a scheduled run leaves it alone while unchanged.</summary>
        internal bool NoImprovement { get; init; }

        /// <summary>Why it was skipped, or what was done.</summary>
        public string Reason { get; init; } = string.Empty;

        /// <summary>Why it was skipped, for scripts (None when it was defragmented).</summary>
        public DefragSkipReason SkipReason { get; init; }

        /// <summary>FIEMAP extents before.</summary>
        public long ExtentsBefore { get; init; }

        /// <summary>FIEMAP extents after (equal to before when skipped).</summary>
        public long ExtentsAfter { get; init; }

        /// <summary>Fragments (runs of physically contiguous extents) before.</summary>
        public long FragmentsBefore { get; init; }

        /// <summary>Fragments after.</summary>
        public long FragmentsAfter { get; init; }

        /// <summary>Extents below the threshold before.</summary>
        public long SmallExtentsBefore { get; init; }

        /// <summary>Extents below the threshold after.</summary>
        public long SmallExtentsAfter { get; init; }

        /// <summary>Bytes rewritten: on btrfs measured (now elsewhere on disk), elsewhere the bytes copied or moved.</summary>
        public long BytesRewritten { get; init; }

        /// <summary>Bytes in small shared extents left alone so they stay shared.</summary>
        public long SharedBytesSkipped { get; init; }

        /// <summary>Bytes of shared extents rewritten (they no longer share: new space used); on btrfs measured.</summary>
        public long SharedBytesUnshared { get; init; }

        /// <summary>Wall time of the file's defragmentation, sync included.</summary>
        public TimeSpan Duration { get; init; }
    }

    /// <summary>
    /// Invoke-BtrfsDefrag's summary of a scheduled run over a tree (-MaxDuration, -StatePath, -Passes):
    /// what was measured, done and left alone, the bytes rewritten, the extents before and after, the time
    /// used, and whether the budget stopped it and what is left for the next run.
    /// </summary>
    public sealed class DefragRunSummary
    {
        /// <summary>The trees walked.</summary>
        public string Path { get; set; } = string.Empty;

        /// <summary>Files measured in this run.</summary>
        public int FilesMeasured { get; set; }

        /// <summary>Files done in this pass by an earlier run and unchanged since: not measured again (a file with several names, once).</summary>
        public int FilesAlreadyDone { get; set; }

        /// <summary>Files defragmented.</summary>
        public int FilesDefragmented { get; set; }

        /// <summary>
        /// Of <see cref="FilesDefragmented"/>, the btrfs files that came out with no fewer extents or fragments while nothing
        /// wrote to them (the free space is as fragmented as the file): left alone for the next 7 passes while unchanged.
        /// </summary>
        public int FilesNotImproved { get; set; }

        /// <summary>Files left alone: fewer fragments than -MinimumFragments.</summary>
        public int FilesBelowMinimum { get; set; }

        /// <summary>Files left alone for another reason (nothing to rewrite, shared, immutable, an active swapfile...).</summary>
        public int FilesSkipped { get; set; }

        /// <summary>Files that changed (or went) between the measurement and their turn, or during it (a writer while the copy was made: ChangedWhileCopying): measured again next time.</summary>
        public int FilesChanged { get; set; }

        /// <summary>Files that failed (each with its error record).</summary>
        public int FilesFailed { get; set; }

        /// <summary>Files found worth defragmenting and not reached (the budget, or Ctrl+C).</summary>
        public int FilesRemaining { get; set; }

        /// <summary>
        /// Files worth defragmenting that need more than a run with this -MaxDuration has for rewriting, at the rate seen (each warned about): no run
        /// that measures as much can do them. Not in <see cref="FilesRemaining"/>, and they do not make <see cref="StoppedByBudget"/>
        /// true: a longer -MaxDuration (or a higher -MaxBytesPerSecond) is needed, or defragmenting them on their own.
        /// </summary>
        public int FilesTooLongForBudget { get; set; }

        /// <summary>Bytes those would rewrite.</summary>
        public long BytesToRewrite { get; set; }

        /// <summary>Bytes rewritten.</summary>
        public long BytesRewritten { get; set; }

        /// <summary>Extents of the files defragmented, before.</summary>
        public long ExtentsBefore { get; set; }

        /// <summary>Extents of the files defragmented, after.</summary>
        public long ExtentsAfter { get; set; }

        /// <summary>Fragments of the files defragmented, before.</summary>
        public long FragmentsBefore { get; set; }

        /// <summary>Fragments of the files defragmented, after.</summary>
        public long FragmentsAfter { get; set; }

        /// <summary>The pass the trees are in when the run ends: one more than the last pass completed, where the next run resumes with a state file (without one, every run begins at pass 1); with several trees, the lowest. When the state file stopped recording, the pass it holds.</summary>
        public int Pass { get; set; } = 1;

        /// <summary>Whole passes completed in this run.</summary>
        public int PassesCompleted { get; set; }

        /// <summary>Time used.</summary>
        public TimeSpan Duration { get; set; }

        /// <summary>The budget (-MaxDuration) ran out before every file worth it was done.</summary>
        public bool StoppedByBudget { get; set; }

        /// <summary>Half the budget went to measuring and the run stopped measuring there: the next run measures the rest (what is recorded is not measured again).</summary>
        public bool MeasuringStopped { get; set; }

        /// <summary>The state file the next run resumes from (null without one).</summary>
        public string? StatePath { get; set; }
    }
}
