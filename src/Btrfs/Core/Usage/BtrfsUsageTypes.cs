namespace Btrfs.Core
{
    /// <summary>A row of Measure-BtrfsUsage -ByCompression: compsize's "Type" column.</summary>
    public enum BtrfsUsageType
    {
        /// <summary>All types together (compsize's TOTAL row).</summary>
        Total = 0,

        /// <summary>Uncompressed data extents (and uncompressed inline data).</summary>
        None,

        /// <summary>zlib-compressed extents.</summary>
        Zlib,

        /// <summary>LZO-compressed extents.</summary>
        Lzo,

        /// <summary>Zstandard-compressed extents.</summary>
        Zstd,

        /// <summary>A compression type this version does not know (compsize shows "?N").</summary>
        Other,

        /// <summary>Preallocated extents first seen through a prealloc reference (compsize's "prealloc").</summary>
        Prealloc,
    }

    /// <summary>The byte figures of one accounting category, with compsize's percentage.</summary>
    public sealed class BtrfsUsageRow
    {
        /// <summary>Creates a row.</summary>
        public BtrfsUsageRow(BtrfsUsageType type, long diskBytes, long uncompressedBytes, long referencedBytes)
        {
            Type = type;
            DiskBytes = diskBytes;
            UncompressedBytes = uncompressedBytes;
            ReferencedBytes = referencedBytes;
        }

        /// <summary>The category (Total for the row that sums them).</summary>
        public BtrfsUsageType Type { get; }

        /// <summary>compsize's Perc: DiskBytes * 100 / UncompressedBytes, rounded down (0 when nothing is uncompressed).</summary>
        public int Percent => UsageMath.Percent(DiskBytes, UncompressedBytes);

        /// <summary>Bytes on disk (every distinct extent once).</summary>
        public long DiskBytes { get; }

        /// <summary>Bytes of those extents when uncompressed.</summary>
        public long UncompressedBytes { get; }

        /// <summary>Bytes of files that reference them (as many times as they are referenced).</summary>
        public long ReferencedBytes { get; }
    }

    /// <summary>The arithmetic shared by every usage object.</summary>
    internal static class UsageMath
    {
        internal static int Percent(long disk, long uncompressed) => uncompressed <= 0 ? 0 : (int)((System.UInt128)(ulong)disk * 100 / (ulong)uncompressed);

        internal static double Ratio(long disk, long uncompressed) => disk <= 0 ? 0 : System.Math.Round((double)uncompressed / disk, 3);
    }
}
