namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Linq;
    using System.Text;
    using Btrfs.Kernel;

    /// <summary>
    /// Show-ExtentMap's Core: a file drawn as rows of cells, each cell a fixed share of the file's size.
    /// Two channels that never hide each other: the shade of a cell is how many extents fall into it
    /// (any data: shared, compressed or not), and a mark under the cell says what kind of data holds
    /// most of it (S shared, Z compressed, X both, u unwritten), so a fragmented file covered by a snapshot
    /// still shows its fragmentation. A cell less than half of which holds data is drawn as a little data
    /// (so a few blocks written into a large sparse image still show), one without any as a hole. Extents
    /// are added one at a time in file order; memory is bounded by the number of cells.
    /// </summary>
    public sealed class ExtentPicture
    {
        /// <summary>The shades, from one extent in a cell to 16 or more.</summary>
        public const char OneExtent = '█';
        public const char FewExtents = '▓';
        public const char SomeExtents = '▒';
        public const char ManyExtents = '░';
        public const char LittleData = '▁';
        public const char Hole = '·';

        /// <summary>The marks under a row.</summary>
        public const char Shared = 'S';
        public const char Compressed = 'Z';
        public const char SharedCompressed = 'X';
        public const char Unwritten = 'u';

        /// <summary>The legend: two lines, each under 80 columns.</summary>
        public static readonly string[] LegendLines =
        {
            $"{OneExtent} one extent  {FewExtents} 2-3 extents  {SomeExtents} 4-15  {ManyExtents} 16 or more  {LittleData} under half data  {Hole} hole",
            $"Marked under a cell: {Shared} shared  {Compressed} compressed  {SharedCompressed} shared+compressed  {Unwritten} unwritten",
        };

        private const int Data = 0, SharedBytes = 1, CompressedBytes = 2, UnwrittenBytes = 3, SharedCompressedBytes = 4, Kinds = 5;

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
            // Cell i stands for [size × i ÷ cells, size × (i + 1) ÷ cells): each an exact share of the size, so an extent
            // boundary falls in the cell it is in (before: the cell size was rounded up, and the error added up along the
            // row: a cell wholly inside one extent was drawn as holding two, a hostile review). At least a byte a cell.
            cellCount = (int)Math.Min((long)width * rows, this.size);
            cellBytes = cellCount == 0 ? 1 : Math.Max(1, this.size / cellCount);
            bytes = new long[cellCount * Kinds];
            extents = new int[cellCount];
            counter = new FragmentationCounter(FragmentationAnalyzer.DefaultThreshold, fileSystem, this.size);
        }

        /// <summary>The file.</summary>
        public string Path { get; }

        /// <summary>Bytes each cell stands for (rounded down where the size does not divide evenly: cells differ by a byte).</summary>
        public long CellBytes => cellBytes;

        /// <summary>Where cell <paramref name="cell"/> begins (the file's size for the cell after the last): size × cell ÷ cells, without overflow.</summary>
        private long CellStart(long cell) => cell >= cellCount ? size : (long)((Int128)size * cell / cellCount);

        /// <summary>The cell that holds byte <paramref name="offset"/> (below the size).</summary>
        private long CellOf(long offset)
        {
            long cell = (long)((Int128)offset * cellCount / size);
            while (cell + 1 < cellCount && CellStart(cell + 1) <= offset)
            {
                cell++;
            }

            while (cell > 0 && CellStart(cell) > offset)
            {
                cell--;
            }

            return cell;
        }

        /// <summary>Cells drawn (the last row may be shorter).</summary>
        public int CellCount => cellCount;

        /// <summary>
        /// The legend as lines of the picture, each of its two lines wrapped between entries at
        /// <paramref name="lineWidth"/> characters (0: as they are, under 80): a narrow window cut them mid-word
        /// (a hostile review).
        /// </summary>
        public static IEnumerable<ExtentMapLine> Legend(int lineWidth = 0)
        {
            foreach (string text in LegendLines)
            {
                // Entries are two spaces apart ("█ one extent  ▓ 2-3 extents"): each entry is one word of the wrap.
                string[] entries = text.Split("  ", StringSplitOptions.RemoveEmptyEntries);
                foreach (string line in lineWidth > 0 && text.Length > lineWidth ? TextWrap.Lines(entries.Select(e => e + " "), lineWidth + 1) : new List<string> { text })
                {
                    yield return new ExtentMapLine(null, ExtentMapLineKind.Legend, -1, line.TrimEnd(), string.Empty);
                }
            }
        }

        /// <summary>Adds the next extent (in file order; holes are what no extent covers).</summary>
        public void Add(FileExtent extent)
        {
            ArgumentNullException.ThrowIfNull(extent);
            if (!extent.IsHole)
            {
                Add(new RawExtent((ulong)extent.LogicalOffset, (ulong)extent.PhysicalOffset, (ulong)extent.Length, extent.Flags));
            }
        }

        /// <summary>
        /// The picture: the path, a summary (wrapped at spaces into lines of at most <paramref name="lineWidth"/>
        /// characters, the row width when not given: before, a long one broke mid-number at 80 columns, a hostile
        /// review), and each row of cells followed by its marks where it has any (the legend is <see cref="Legend"/>,
        /// once per call).
        /// </summary>
        public IEnumerable<ExtentMapLine> Render(int lineWidth = 0)
        {
            counter.Finish();
            // The text is one line: a control character in the name (a newline could fake a line of its own, an escape
            // sequence drive the terminal) shows as '?', as ls shows it; Path keeps the name as it is. (A hostile test.)
            yield return new ExtentMapLine(Path, ExtentMapLineKind.File, -1, string.Create(Path.Length, Path, (span, p) =>
            {
                for (int i = 0; i < p.Length; i++)
                {
                    span[i] = char.IsControl(p[i]) ? '?' : p[i];
                }
            }), string.Empty);
            string[] summary =
            {
                SizeFormatter.Format(size), "in", Count(counter.ExtentCount, "extent") + ",", Count(counter.FragmentCount, "fragment") + ",",
                SizeFormatter.Format(counter.SharedBytes), "shared;", "one", "cell",
                $"{(cellCount > 0 && size % cellCount != 0 ? "≈" : "=")} {SizeFormatter.Format(cellCount == 0 ? 0 : (size / cellCount) + (size % cellCount * 2 >= cellCount ? 1 : 0))}",
            };
            foreach (string line in TextWrap.Lines(summary, lineWidth > 0 ? lineWidth : width))
            {
                yield return new ExtentMapLine(Path, ExtentMapLineKind.Summary, -1, line, string.Empty);
            }

            var cells = new StringBuilder(width);
            var marks = new StringBuilder(width);
            for (int start = 0, row = 0; start < cellCount; start += width, row++)
            {
                cells.Clear();
                marks.Clear();
                for (int cell = start; cell < Math.Min(cellCount, start + width); cell++)
                {
                    (char shade, char mark) = Cell(cell);
                    cells.Append(shade);
                    marks.Append(mark);
                }

                string m = marks.ToString();
                yield return new ExtentMapLine(Path, ExtentMapLineKind.Cells, row, cells.ToString(), m);
                if (m.AsSpan().ContainsAnyExcept(' '))
                {
                    yield return new ExtentMapLine(Path, ExtentMapLineKind.Marks, row, m.TrimEnd(), string.Empty);
                }
            }
        }

        internal void Add(in RawExtent e)
        {
            counter.Add(e);
            long start = (long)e.Logical;
            long end = Math.Min(e.FileEnd, size);
            if (start >= end || cellCount == 0)
            {
                return;
            }

            // Compressed data that is also shared (any compressed file in a snapshotted subvolume) is marked as both:
            // before, S hid Z there, so compression could not be seen in a snapshotted subvolume (a hostile review).
            int kind = (e.Flags & (ExtentFlags.Shared | ExtentFlags.Encoded)) == (ExtentFlags.Shared | ExtentFlags.Encoded) ? SharedCompressedBytes
                : (e.Flags & ExtentFlags.Shared) != 0 ? SharedBytes
                : (e.Flags & ExtentFlags.Encoded) != 0 ? CompressedBytes
                : (e.Flags & ExtentFlags.Unwritten) != 0 ? UnwrittenBytes
                : Data;
            for (long cell = CellOf(start); cell < cellCount && CellStart(cell) < end; cell++)
            {
                long overlap = Math.Min(end, CellStart(cell + 1)) - Math.Max(start, CellStart(cell));
                bytes[(cell * Kinds) + kind] += overlap;
                extents[cell]++;
            }
        }

        private static string Count(long n, string what) =>
            n.ToString("N0", CultureInfo.InvariantCulture) + " " + what + (n == 1 ? string.Empty : "s");

        private (char Shade, char Mark) Cell(int cell)
        {
            long cellLength = CellStart(cell + 1) - CellStart(cell);
            ReadOnlySpan<long> b = bytes.AsSpan(cell * Kinds, Kinds);
            long covered = b[Data] + b[SharedBytes] + b[CompressedBytes] + b[UnwrittenBytes] + b[SharedCompressedBytes];

            // The mark says what holds most of the cell, shared and compressed each counted with the data that is both
            // (a review: counted apart, 30 % shared + 30 % both + 40 % plain data drew no mark, where S was drawn before).
            long shared = b[SharedBytes] + b[SharedCompressedBytes], compressed = b[CompressedBytes] + b[SharedCompressedBytes];
            int most = Data;
            long mostBytes = b[Data];
            foreach ((int kind, long n) in new[] { (SharedBytes, shared), (CompressedBytes, compressed), (UnwrittenBytes, b[UnwrittenBytes]) })
            {
                if (n > mostBytes)
                {
                    (most, mostBytes) = (kind, n);
                }
            }

            if (most is SharedBytes or CompressedBytes && b[SharedCompressedBytes] > 0 && b[SharedCompressedBytes] >= (most == SharedBytes ? b[SharedBytes] : b[CompressedBytes]))
            {
                most = SharedCompressedBytes; // most of it is both
            }

            if (covered == 0)
            {
                return (Hole, ' ');
            }

            char shade = extents[cell] switch
            {
                _ when cellLength - covered > covered => LittleData,
                <= 1 => OneExtent,
                <= 3 => FewExtents,
                <= 15 => SomeExtents,
                _ => ManyExtents,
            };
            char mark = most switch
            {
                SharedBytes => Shared,
                SharedCompressedBytes => SharedCompressed,
                CompressedBytes => Compressed,
                UnwrittenBytes => Unwritten,
                _ => ' ',
            };
            return (shade, mark);
        }
    }
}
