namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Linq;
    using System.Text.RegularExpressions;
    using Btrfs.Kernel;

    /// <summary>One EXTENT_DATA item as `btrfs inspect-internal dump-tree` prints it (null: the field is not printed for that type).</summary>
    internal sealed record DumpedItem(
        ulong Inode,
        ulong FileOffset,
        ulong Generation,
        int Type,
        ulong? DiskBytenr,
        ulong? DiskNumBytes,
        ulong? ExtentOffset,
        ulong? NumBytes,
        ulong? RamBytes,
        int Compression,
        ulong? InlineSize);

    /// <summary>compsize -b's report: the "Processed" line and one row per type (TOTAL included), bytes.</summary>
    internal sealed record CompsizeReport(long Files, long Extents, long Refs, long Inline, IReadOnlyDictionary<string, (int Perc, long Disk, long Uncompressed, long Referenced)> Rows)
    {
        internal (int Perc, long Disk, long Uncompressed, long Referenced) Total => Rows["TOTAL"];
    }

    /// <summary>btrfs-progs and compsize as the independent truths for exact items, space accounting and extent owners.</summary>
    internal static partial class BtrfsProgs
    {
        /// <summary>Commits the filesystem so the trees on disk are current (dump-tree reads the disk, not the kernel).</summary>
        internal static void Sync(string path) => Shell.Run("btrfs", "filesystem", "sync", path);

        /// <summary>The subvolume id of the tree a file is in (`btrfs inspect-internal rootid`).</summary>
        internal static ulong RootId(string path) => ulong.Parse(Shell.Run("btrfs", "inspect-internal", "rootid", path).Trim(), CultureInfo.InvariantCulture);

        /// <summary>
        /// The EXTENT_DATA items of <paramref name="file"/>, read by `dump-tree -t ROOT IMAGE` from the
        /// image file under the loop device (after a commit): the kernel's in-memory state is not consulted.
        /// </summary>
        internal static List<DumpedItem> Items(string image, string file)
        {
            Sync(file);
            ulong root = RootId(file);
            ulong inode = Inode(file);
            return ParseItems(Shell.Run("btrfs", "inspect-internal", "dump-tree", "-t", root.ToString(CultureInfo.InvariantCulture), image), inode);
        }

        /// <summary>The inode number (stat).</summary>
        internal static ulong Inode(string path) => ulong.Parse(Shell.Run("stat", "-c", "%i", path).Trim(), CultureInfo.InvariantCulture);

        internal static List<DumpedItem> ParseItems(string dump, ulong inode)
        {
            var items = new List<DumpedItem>();
            string[] lines = dump.Split('\n');
            for (int i = 0; i < lines.Length; i++)
            {
                Match key = KeyLine().Match(lines[i]);
                if (!key.Success || U(key, "ino") != inode)
                {
                    continue;
                }

                ulong offset = U(key, "off");
                Match head = GenerationLine().Match(lines[i + 1]);
                Assert(head.Success, lines[i + 1]);
                int type = int.Parse(head.Groups["type"].Value, CultureInfo.InvariantCulture);
                ulong generation = U(head, "gen");
                Match inline = InlineLine().Match(lines[i + 2]);
                if (inline.Success)
                {
                    items.Add(new DumpedItem(inode, offset, generation, type, null, null, null, null, U(inline, "ram"), int.Parse(inline.Groups["comp"].Value, CultureInfo.InvariantCulture), U(inline, "size")));
                    continue;
                }

                Match disk = DiskLine().Match(lines[i + 2]);
                Match refs = OffsetLine().Match(lines[i + 3]);
                Assert(disk.Success && refs.Success, lines[i + 2] + " / " + lines[i + 3]);
                Match comp = CompressionLine().Match(i + 4 < lines.Length ? lines[i + 4] : string.Empty);
                items.Add(new DumpedItem(
                    inode,
                    offset,
                    generation,
                    type,
                    U(disk, "bytenr"),
                    U(disk, "nr"),
                    U(refs, "off"),
                    U(refs, "nr"),
                    refs.Groups["ram"].Success ? U(refs, "ram") : null,
                    comp.Success ? int.Parse(comp.Groups["comp"].Value, CultureInfo.InvariantCulture) : 0,
                    null));
            }

            return items;
        }

        /// <summary>Runs `compsize -b` on the paths and parses its report.</summary>
        internal static CompsizeReport Compsize(params string[] paths)
        {
            string text = Shell.Run("compsize", new[] { "-b" }.Concat(paths).ToArray());
            Match processed = ProcessedLine().Match(text);
            Assert(processed.Success, text);
            var rows = new Dictionary<string, (int, long, long, long)>(StringComparer.Ordinal);
            foreach (Match row in RowLine().Matches(text))
            {
                rows[row.Groups["type"].Value] = (int.Parse(row.Groups["perc"].Value, CultureInfo.InvariantCulture), L(row, "disk"), L(row, "unc"), L(row, "ref"));
            }

            Assert(rows.ContainsKey("TOTAL"), text);
            return new CompsizeReport(L(processed, "files"), L(processed, "ext"), L(processed, "refs"), L(processed, "inline"), rows);
        }

        /// <summary>
        /// `btrfs inspect-internal logical-resolve -P -o ADDRESS MOUNT`: every reference of the extent as
        /// (inode, offset, root). Without -P btrfs-progs 6.2 names only files of the subvolume it is given
        /// and says "could not be accessed: not mounted" for the others (btrfs-progs#400), so paths come
        /// from <see cref="InodeResolve"/> instead.
        /// </summary>
        internal static List<(long Inode, long Offset, long Root)> LogicalResolve(long address, string mount) =>
            ResolvedLine().Matches(Shell.Run("btrfs", "inspect-internal", "logical-resolve", "-P", "-o", address.ToString(CultureInfo.InvariantCulture), mount))
                .Select(m => ((long)U(m, "ino"), (long)U(m, "off"), (long)U(m, "root")))
                .ToList();

        /// <summary>`btrfs inspect-internal inode-resolve INODE SUBVOLUME_DIR`: the inode's paths (INO_PATHS, by btrfs-progs).</summary>
        internal static List<string> InodeResolve(long inode, string subvolumeDirectory) =>
            Shell.Run("btrfs", "inspect-internal", "inode-resolve", inode.ToString(CultureInfo.InvariantCulture), subvolumeDirectory)
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .ToList();

        /// <summary>`btrfs subvolume list MOUNT`: subvolume id to its path from the top level.</summary>
        internal static Dictionary<long, string> Subvolumes(string mount) =>
            SubvolumeLine().Matches(Shell.Run("btrfs", "subvolume", "list", mount))
                .ToDictionary(m => (long)U(m, "id"), m => m.Groups["path"].Value);

        private static ulong U(Match m, string g) => ulong.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture);

        private static long L(Match m, string g) => long.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture);

        private static void Assert(bool ok, string text)
        {
            if (!ok)
            {
                throw new InvalidOperationException("Unexpected btrfs-progs/compsize output: " + text);
            }
        }

        [GeneratedRegex(@"^\s*item \d+ key \((?<ino>\d+) EXTENT_DATA (?<off>\d+)\)")]
        private static partial Regex KeyLine();

        [GeneratedRegex(@"^\s*generation (?<gen>\d+) type (?<type>\d+) ")]
        private static partial Regex GenerationLine();

        [GeneratedRegex(@"^\s*inline extent data size (?<size>\d+) ram_bytes (?<ram>\d+) compression (?<comp>\d+)")]
        private static partial Regex InlineLine();

        [GeneratedRegex(@"^\s*(extent|prealloc) data disk byte (?<bytenr>\d+) nr (?<nr>\d+)")]
        private static partial Regex DiskLine();

        [GeneratedRegex(@"^\s*(extent|prealloc) data offset (?<off>\d+) nr (?<nr>\d+)( ram (?<ram>\d+))?")]
        private static partial Regex OffsetLine();

        [GeneratedRegex(@"^\s*extent compression (?<comp>\d+)")]
        private static partial Regex CompressionLine();

        [GeneratedRegex(@"^inode (?<ino>\d+) offset (?<off>\d+) root (?<root>\d+)\s*$", RegexOptions.Multiline)]
        private static partial Regex ResolvedLine();

        [GeneratedRegex(@"^ID (?<id>\d+) gen \d+ top level \d+ path (?<path>.+?)\s*$", RegexOptions.Multiline)]
        private static partial Regex SubvolumeLine();

        [GeneratedRegex(@"Processed (?<files>\d+) files?, (?<ext>\d+) regular extents \((?<refs>\d+) refs\), (?<inline>\d+) inline")]
        private static partial Regex ProcessedLine();

        [GeneratedRegex(@"^(?<type>\S+)\s+(?<perc>\d+)%\s+(?<disk>\d+)\s+(?<unc>\d+)\s+(?<ref>\d+)\s*$", RegexOptions.Multiline)]
        private static partial Regex RowLine();
    }
}
