namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// compsize's accounting (compsize.c parse_file_extent_item), for one file or, merged, for many:
    /// inline items add their stored bytes to disk and ram_bytes to uncompressed and referenced;
    /// a data extent adds disk_num_bytes and ram_bytes the first time its disk address is seen, in the
    /// category of that first reference (compression type, or prealloc); every reference adds
    /// num_bytes to referenced; holes add nothing.
    /// </summary>
    internal sealed class UsageCounters
    {
        internal const int None = 0;
        internal const int Zlib = 1;
        internal const int Lzo = 2;
        internal const int Zstd = 3;
        internal const int Other = 4;
        internal const int Prealloc = 5;
        private const int Count = 6;

        private readonly ulong[] disk = new ulong[Count];
        private readonly ulong[] uncompressed = new ulong[Count];
        private readonly ulong[] referenced = new ulong[Count];
        private readonly Dictionary<(int FileSystem, ulong DiskBytenr), ExtentUse> extents = new();

        /// <summary>A number for each btrfs filesystem measured in this process (by its UUID), 0 for none known.</summary>
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, int> FileSystemNumbers = new();
        private static int lastFileSystemNumber;

        /// <summary>The filesystem of the file these counters are for (0 for a sum, whose extents each carry theirs).</summary>
        private int fileSystem;
        private readonly List<ExtentUse> order = new();

        /// <summary>The categories in the order compsize prints them (by type number, prealloc last).</summary>
        internal static readonly int[] CompsizeOrder = { None, Zlib, Lzo, Zstd, Other, Prealloc };

        /// <summary>
        /// Counters for one file of the btrfs filesystem <paramref name="uuid"/>: its extents are told apart from another
        /// filesystem's at the same disk address when sums are merged (before, a -Summary over two filesystems counted
        /// such extents once, and their waste as none; found by a hostile review).
        /// </summary>
        internal static UsageCounters For(Guid? uuid) => new()
        {
            fileSystem = uuid is Guid g ? FileSystemNumbers.GetOrAdd(g, _ => System.Threading.Interlocked.Increment(ref lastFileSystemNumber)) : 0,
        };

        internal long Files { get; private set; }

        /// <summary>Sum of the measured files' sizes (st_size), for progress.</summary>
        internal long FileBytes { get; private set; }

        internal long Extents => extents.Count;

        internal long References { get; private set; }

        internal long InlineItems { get; private set; }

        /// <summary>The waste of the extents seen, from the references seen (computed once, when asked).</summary>
        internal long Wasted
        {
            get
            {
                ulong w = 0;
                foreach (ExtentUse e in order)
                {
                    w += e.WastedBytes();
                }

                return (long)w;
            }
        }

        internal static BtrfsUsageType TypeOf(int category) => category switch
        {
            None => BtrfsUsageType.None,
            Zlib => BtrfsUsageType.Zlib,
            Lzo => BtrfsUsageType.Lzo,
            Zstd => BtrfsUsageType.Zstd,
            Prealloc => BtrfsUsageType.Prealloc,
            _ => BtrfsUsageType.Other,
        };

        internal static int CategoryOf(in BtrfsFileExtentRecord r) =>
            r.Type == BtrfsExtentType.Prealloc ? Prealloc : r.Compression <= Zstd ? r.Compression : Other;

        internal long[] Disk() => Signed(disk);

        internal long[] Uncompressed() => Signed(uncompressed);

        internal long[] Referenced() => Signed(referenced);

        /// <summary>Counts one file's items (a file as compsize's do_file).</summary>
        internal void AddFile(long size, IEnumerable<BtrfsFileExtentRecord> items)
        {
            StartFile(size);
            foreach (BtrfsFileExtentRecord r in items)
            {
                Add(r);
            }
        }

        /// <summary>Counts a file whose items follow one by one (<see cref="Add"/>).</summary>
        internal void StartFile(long size)
        {
            Files++;
            FileBytes += size;
        }

        /// <summary>Counts one item.</summary>
        internal void Add(in BtrfsFileExtentRecord r)
        {
            int c = CategoryOf(r);
            if (r.IsInline)
            {
                disk[c] += r.InlineLength;
                uncompressed[c] += r.RamBytes;
                referenced[c] += r.RamBytes;
                InlineItems++;
                return;
            }

            if (r.IsHole)
            {
                return;
            }

            if (!extents.TryGetValue((fileSystem, r.DiskBytenr), out ExtentUse? e))
            {
                e = new ExtentUse(fileSystem, r.DiskBytenr, r.DiskNumBytes, r.RamBytes, c);
                extents.Add((fileSystem, r.DiskBytenr), e);
                order.Add(e);
                disk[c] += r.DiskNumBytes;
                uncompressed[c] += r.RamBytes;
            }

            e.Use(r.ExtentOffset, r.ExtentOffset + r.NumBytes);
            referenced[c] += r.NumBytes;
            References++;
        }

        /// <summary>
        /// For each extent these files leave partly unused, adds the parts every other reference on the filesystem uses
        /// (a reflink copy's, a snapshot's: <paramref name="usedByAll"/>), so the waste is what no reference uses, not
        /// only what these files do not. Only bookends are looked up: most extents are used whole. With <paramref name="known"/>,
        /// each extent's references are read once for all the files that share it.
        /// </summary>
        internal void AddOtherReferences(Func<ulong, IEnumerable<(ulong Start, ulong End)>> usedByAll, OtherReferences? known = null)
        {
            foreach (ExtentUse e in order)
            {
                if (e.WastedBytes() == 0)
                {
                    continue;
                }

                foreach ((ulong start, ulong end) in known is null ? usedByAll(e.DiskBytenr) : known.Of(e, usedByAll))
                {
                    e.Use(start, end);
                    if (e.WastedBytes() == 0)
                    {
                        break; // used whole: the other references need not be read
                    }
                }
            }
        }

        /// <summary>
        /// Adds another measurement (of later files, in input order) as if its items had been counted
        /// here: its extents already seen here only widen the used ranges; new ones are adopted.
        /// </summary>
        internal void Merge(UsageCounters other)
        {
            Files += other.Files;
            FileBytes += other.FileBytes;
            References += other.References;
            InlineItems += other.InlineItems;
            for (int c = 0; c < Count; c++)
            {
                referenced[c] += other.referenced[c];
            }

            // Inline bytes are in other's disk/uncompressed totals next to its extents: take the
            // extents' share out and add back only the extents that are new here.
            for (int c = 0; c < Count; c++)
            {
                disk[c] += other.disk[c];
                uncompressed[c] += other.uncompressed[c];
            }

            foreach (ExtentUse e in other.order)
            {
                if (extents.TryGetValue((e.FileSystem, e.DiskBytenr), out ExtentUse? mine))
                {
                    mine.Merge(e);
                    disk[e.Category] -= e.DiskNumBytes;
                    uncompressed[e.Category] -= e.RamBytes;
                }
                else
                {
                    extents.Add((e.FileSystem, e.DiskBytenr), e);
                    order.Add(e);
                }
            }
        }

        private static long[] Signed(ulong[] values)
        {
            var result = new long[values.Length];
            for (int i = 0; i < values.Length; i++)
            {
                result[i] = (long)values[i];
            }

            return result;
        }
    }
}
