namespace Btrfs.Core
{
    using System;

    /// <summary>
    /// The compsize figures (reference 3.8): bytes on disk (each distinct extent once), uncompressed,
    /// referenced, in total and for each category as separate scalar properties so CSV keeps them,
    /// plus the bookend waste compsize does not show.
    /// </summary>
    public abstract class BtrfsUsageFigures
    {
        private readonly long[] disk;
        private readonly long[] uncompressed;
        private readonly long[] referenced;

        private protected BtrfsUsageFigures(UsageCounters c)
        {
            disk = c.Disk();
            uncompressed = c.Uncompressed();
            referenced = c.Referenced();
            WastedBytes = c.Wasted;
            foreach (long d in disk)
            {
                DiskBytes += d;
            }

            foreach (long u in uncompressed)
            {
                UncompressedBytes += u;
            }

            foreach (long r in referenced)
            {
                ReferencedBytes += r;
            }
        }

        /// <summary>Bytes on disk: every distinct data extent once (compressed size), plus inline data.</summary>
        public long DiskBytes { get; }

        /// <summary>Bytes of the same extents uncompressed (whole extents, also the parts no reference uses).</summary>
        public long UncompressedBytes { get; }

        /// <summary>Bytes of file data the references cover (a reflinked or snapshotted extent counts once per reference).</summary>
        public long ReferencedBytes { get; }

        /// <summary>compsize's Perc: DiskBytes * 100 / UncompressedBytes, rounded down.</summary>
        public int Percent => UsageMath.Percent(DiskBytes, UncompressedBytes);

        /// <summary>UncompressedBytes / DiskBytes (2.5: the data takes 40 % of its size on disk); 0 when nothing is on disk.</summary>
        public double CompressionRatio => UsageMath.Ratio(DiskBytes, UncompressedBytes);

        /// <summary>
        /// Bookend waste: disk bytes of these extents that none of the measured references uses (kept
        /// only because another part of the extent is still referenced). For a compressed extent, the
        /// unreferenced share of its compressed size.
        /// </summary>
        public long WastedBytes { get; }

        /// <summary>Disk bytes of uncompressed extents and inline data.</summary>
        public long NoneDiskBytes => disk[UsageCounters.None];

        /// <summary>Uncompressed bytes of uncompressed extents and inline data.</summary>
        public long NoneUncompressedBytes => uncompressed[UsageCounters.None];

        /// <summary>Referenced bytes of uncompressed extents and inline data.</summary>
        public long NoneReferencedBytes => referenced[UsageCounters.None];

        /// <summary>Disk bytes of zlib extents.</summary>
        public long ZlibDiskBytes => disk[UsageCounters.Zlib];

        /// <summary>Uncompressed bytes of zlib extents.</summary>
        public long ZlibUncompressedBytes => uncompressed[UsageCounters.Zlib];

        /// <summary>Referenced bytes of zlib extents.</summary>
        public long ZlibReferencedBytes => referenced[UsageCounters.Zlib];

        /// <summary>Disk bytes of LZO extents.</summary>
        public long LzoDiskBytes => disk[UsageCounters.Lzo];

        /// <summary>Uncompressed bytes of LZO extents.</summary>
        public long LzoUncompressedBytes => uncompressed[UsageCounters.Lzo];

        /// <summary>Referenced bytes of LZO extents.</summary>
        public long LzoReferencedBytes => referenced[UsageCounters.Lzo];

        /// <summary>Disk bytes of zstd extents.</summary>
        public long ZstdDiskBytes => disk[UsageCounters.Zstd];

        /// <summary>Uncompressed bytes of zstd extents.</summary>
        public long ZstdUncompressedBytes => uncompressed[UsageCounters.Zstd];

        /// <summary>Referenced bytes of zstd extents.</summary>
        public long ZstdReferencedBytes => referenced[UsageCounters.Zstd];

        /// <summary>Disk bytes of preallocated extents (compsize's prealloc row).</summary>
        public long PreallocDiskBytes => disk[UsageCounters.Prealloc];

        /// <summary>Uncompressed bytes of preallocated extents.</summary>
        public long PreallocUncompressedBytes => uncompressed[UsageCounters.Prealloc];

        /// <summary>Referenced bytes of preallocated extents.</summary>
        public long PreallocReferencedBytes => referenced[UsageCounters.Prealloc];

        /// <summary>compsize's table as rows: Total, then each category that has uncompressed bytes, in compsize's order.</summary>
        public BtrfsUsageRow[] ToRows()
        {
            var rows = new System.Collections.Generic.List<BtrfsUsageRow> { new(BtrfsUsageType.Total, DiskBytes, UncompressedBytes, ReferencedBytes) };
            foreach (int c in UsageCounters.CompsizeOrder)
            {
                if (uncompressed[c] != 0)
                {
                    rows.Add(new BtrfsUsageRow(UsageCounters.TypeOf(c), disk[c], uncompressed[c], referenced[c]));
                }
            }

            return rows.ToArray();
        }
    }

    /// <summary>Measure-BtrfsUsage's object for one file (the figures `compsize -b FILE` prints for it alone).</summary>
    public sealed class BtrfsFileUsage : BtrfsUsageFigures
    {
        internal BtrfsFileUsage(string path, long size, UsageCounters c, long sharedBytes)
            : base(c)
        {
            Path = path;
            Size = size;

            // Within the size shown: the extent map is read after the size, and a file truncated in between would show
            // more shared bytes than it has (a hostile review: Size 0, SharedBytes 1253376).
            SharedBytes = Math.Clamp(sharedBytes, 0, Math.Max(size, 0));
            Extents = c.Extents;
            ExtentItems = c.References;
            InlineItems = c.InlineItems;
        }

        /// <summary>The file's path.</summary>
        public string Path { get; }

        /// <summary>The file's name (the last part of <see cref="Path"/>), as the table shows it.</summary>
        public string Name => System.IO.Path.GetFileName(Path);

        /// <summary>The file's size (st_size).</summary>
        public long Size { get; }

        /// <summary>Bytes of the file in extents FIEMAP marks shared: shared with another file, a snapshot, or another offset of this file.</summary>
        public long SharedBytes { get; }

        /// <summary>Distinct data extents the file references (compsize's "regular extents").</summary>
        public long Extents { get; }

        /// <summary>EXTENT_DATA items that reference a data extent (compsize's "refs"; holes not counted).</summary>
        public long ExtentItems { get; }

        /// <summary>Inline items (data stored in the metadata).</summary>
        public long InlineItems { get; }
    }

    /// <summary>Measure-BtrfsUsage -Summary: compsize's totals for the whole input (every distinct extent once across all files).</summary>
    public sealed class BtrfsUsageSummary : BtrfsUsageFigures
    {
        internal BtrfsUsageSummary(UsageCounters c)
            : base(c)
        {
            Files = c.Files;
            Extents = c.Extents;
            References = c.References;
            InlineItems = c.InlineItems;
        }

        /// <summary>Files measured (compsize's "Processed N files").</summary>
        public long Files { get; }

        /// <summary>Distinct data extents (compsize's "regular extents").</summary>
        public long Extents { get; }

        /// <summary>References to them (compsize's "refs").</summary>
        public long References { get; }

        /// <summary>Inline items (compsize's "inline").</summary>
        public long InlineItems { get; }
    }
}
