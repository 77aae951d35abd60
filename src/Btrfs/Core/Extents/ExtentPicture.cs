namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Text;
    using Btrfs.Interop;

    /// <summary>
    /// Show-ExtentMap's Core: a file drawn as rows of cells, each cell a fixed share of the file's size,
    /// showing the state that holds most of its bytes: data (shaded by how many extents fall into the
    /// cell), shared, compressed, unwritten or hole. Extents are added one at a time in file order;
    /// memory is bounded by the number of cells, whatever the number of extents.
    /// </summary>
    public sealed class ExtentPicture
    {
        /// <summary>The characters, in the order of the legend.</summary>
        public const char OneExtent = '█';
        public const char FewExtents = '▓';
        public const char SomeExtents = '▒';
        public const char ManyExtents = '░';
        public const char Shared = 'S';
        public const char Compressed = 'Z';
        public const char Unwritten = 'u';
        public const char Hole = '·';

        private const int Data = 0, SharedBytes = 1, CompressedBytes = 2, UnwrittenBytes = 3, Kinds = 4;
        private const string Reset = "\u001b[0m";

        private readonly long size;
        private readonly int width;
        private readonly long cellBytes;
        private readonly int cellCount;
        private readonly long[] bytes;
        private readonly int[] extents;
        private readonly FragmentationCounter counter;

        /// <summary>A picture of a file of <paramref name="size"/> bytes in at most <paramref name="width"/> × <paramref name="rows"/> cells.</summary>
        public ExtentPicture(string path, long size, FileSystemKind fileSystem, int width, int rows)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
            ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
            Path = path;
            this.size = Math.Max(0, size);
            this.width = width;
            long cells = (long)width * rows;
            cellBytes = Math.Max(1, (this.size + cells - 1) / cells);
            cellCount = (int)((this.size + cellBytes - 1) / cellBytes);
            bytes = new long[cellCount * Kinds];
            extents = new int[cellCount];
            counter = new FragmentationCounter(FragmentationAnalyzer.DefaultThreshold, fileSystem, this.size);
        }

        /// <summary>The file.</summary>
        public string Path { get; }

        /// <summary>Bytes each cell stands for.</summary>
        public long CellBytes => cellBytes;

        /// <summary>Cells drawn (the last row may be shorter).</summary>
        public int CellCount => cellCount;

        /// <summary>Adds the next extent (in file order; holes are what no extent covers).</summary>
        public void Add(FileExtent extent)
        {
            ArgumentNullException.ThrowIfNull(extent);
            if (!extent.IsHole)
            {
                Add(new RawExtent((ulong)extent.LogicalOffset, (ulong)extent.PhysicalOffset, (ulong)extent.Length, (uint)extent.Flags));
            }
        }

        /// <summary>The picture: a header line, the rows of cells, and a legend; with ANSI colours when asked.</summary>
        public IEnumerable<string> Render(bool ansi)
        {
            counter.Finish();
            yield return $"{Path}: {SizeFormatter.Format(size)} in {counter.ExtentCount.ToString("N0", CultureInfo.InvariantCulture)} extent(s), {counter.FragmentCount.ToString("N0", CultureInfo.InvariantCulture)} fragment(s), {SizeFormatter.Format(counter.SharedBytes)} shared; one cell = {SizeFormatter.Format(cellBytes)}";
            var line = new StringBuilder(width * 8);
            for (int start = 0; start < cellCount; start += width)
            {
                line.Clear();
                string? color = null;
                for (int cell = start; cell < Math.Min(cellCount, start + width); cell++)
                {
                    (char c, string code) = Cell(cell);
                    if (ansi && code != color)
                    {
                        line.Append("\u001b[").Append(code).Append('m');
                        color = code;
                    }

                    line.Append(c);
                }

                if (ansi)
                {
                    line.Append(Reset);
                }

                yield return line.ToString();
            }

            yield return Legend(ansi);
        }

        internal void Add(in RawExtent e)
        {
            counter.Add(e);
            long start = (long)e.Logical;
            long end = Math.Min((long)e.End, size);
            if (start >= end || cellCount == 0)
            {
                return;
            }

            int kind = (e.Flags & Libc.FIEMAP_EXTENT_SHARED) != 0 ? SharedBytes
                : (e.Flags & Libc.FIEMAP_EXTENT_ENCODED) != 0 ? CompressedBytes
                : (e.Flags & Libc.FIEMAP_EXTENT_UNWRITTEN) != 0 ? UnwrittenBytes
                : Data;
            for (long cell = start / cellBytes; cell < cellCount && cell * cellBytes < end; cell++)
            {
                long cellStart = cell * cellBytes;
                long overlap = Math.Min(end, cellStart + cellBytes) - Math.Max(start, cellStart);
                bytes[(cell * Kinds) + kind] += overlap;
                if (kind == Data)
                {
                    extents[cell]++;
                }
            }
        }

        private (char Char, string Color) Cell(int cell)
        {
            long cellLength = Math.Min(cellBytes, size - ((long)cell * cellBytes));
            long covered = 0;
            int best = Data;
            for (int k = 0; k < Kinds; k++)
            {
                long b = bytes[(cell * Kinds) + k];
                covered += b;
                if (b > bytes[(cell * Kinds) + best])
                {
                    best = k;
                }
            }

            if (cellLength - covered > bytes[(cell * Kinds) + best])
            {
                return (Hole, "90");
            }

            return best switch
            {
                SharedBytes => (Shared, "36"),
                CompressedBytes => (Compressed, "35"),
                UnwrittenBytes => (Unwritten, "34"),
                _ => extents[cell] switch
                {
                    <= 1 => (OneExtent, "32"),
                    <= 3 => (FewExtents, "33"),
                    <= 15 => (SomeExtents, "31"),
                    _ => (ManyExtents, "91"),
                },
            };
        }

        private static string Legend(bool ansi)
        {
            (char c, string code, string text)[] items =
            {
                (OneExtent, "32", "one extent"), (FewExtents, "33", "2-3 extents"), (SomeExtents, "31", "4-15"), (ManyExtents, "91", "16 or more"),
                (Shared, "36", "shared"), (Compressed, "35", "compressed"), (Unwritten, "34", "unwritten"), (Hole, "90", "hole"),
            };
            var sb = new StringBuilder();
            foreach ((char c, string code, string text) in items)
            {
                if (sb.Length > 0)
                {
                    sb.Append("  ");
                }

                sb.Append(ansi ? $"\u001b[{code}m{c}{Reset}" : c.ToString()).Append(' ').Append(text);
            }

            return sb.ToString();
        }
    }
}
