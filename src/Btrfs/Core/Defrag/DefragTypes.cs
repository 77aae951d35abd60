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

        /// <summary>Why it was skipped, or what was done.</summary>
        public string Reason { get; init; } = string.Empty;

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

        /// <summary>Bytes handed to the kernel to rewrite.</summary>
        public long BytesRewritten { get; init; }

        /// <summary>Bytes in small shared extents left alone so they stay shared.</summary>
        public long SharedBytesSkipped { get; init; }

        /// <summary>Bytes of shared extents rewritten (they no longer share: new space used).</summary>
        public long SharedBytesUnshared { get; init; }

        /// <summary>Wall time of the file's defragmentation, sync included.</summary>
        public TimeSpan Duration { get; init; }
    }
}
