namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>
    /// Which disk bytes deduplicating groups frees, group after group: each file's references to its
    /// extents (on btrfs as root the file extent items: extent address and size on disk; otherwise the
    /// FIEMAP pieces), how much of each reference the groups so far cover, and for each extent how many
    /// of its references are not covered yet. A group is credited with the extents whose last reference
    /// it covers. An extent shared with other files (or snapshots) is counted across all of them: on btrfs as
    /// root, each of its references on the filesystem (LOGICAL_INO_V2) must be covered by some group before it
    /// is credited (a hostile review: reflinked copies deduplicated together freed their extent, predicted 0;
    /// and ranges over extents shared with the keeper by an earlier run were shared again for nothing). Where
    /// that cannot be counted, a shared extent is never credited. On filesystems that free block by block
    /// (xfs), every covered byte of an unshared piece counts.
    /// </summary>
    internal sealed class ReclaimLedger(Func<string, FileStatus?>? taken = null) : IDisposable
    {
        private readonly Dictionary<string, FileReferences?> files = new(StringComparer.Ordinal);
        private readonly SharedExtents sharedExtents = new();

        /// <inheritdoc/>
        public void Dispose() => sharedExtents.Dispose();

        /// <summary>
        /// The groups, each with the copy whose extents stay anyway as its keeper (the one the others share): where the
        /// copy found first would go whole (no other group reaches its extents, and its file uses them nowhere else), the
        /// copy with the most bytes in extents its file also uses where no group reaches (a bookend), which no
        /// deduplication frees; otherwise the copy found first. Before, the keeper was always the copy found first: a file's
        /// first half copied to a file of its own came out "frees nothing" (the long file's extent stays for its second
        /// half), where sharing the other way frees the copy (a hostile review), and a file whose two halves are copies of
        /// two other files was kept for one of them, so its extent stayed (two reviews). Called before any group is
        /// credited. Only where every copy's extents are known exactly (btrfs items; on xfs every covered block goes
        /// whichever copy is kept) and no copy is over an extent shared with another file or snapshot (copies sharing
        /// with each other were judged against the first copy).
        /// </summary>
        internal List<BtrfsDuplicateGroup> WithKeepersThatStay(List<BtrfsDuplicateGroup> groups, CancellationToken cancel = default)
        {
            var grouped = new Dictionary<string, List<(long Offset, long Length, int Group)>>(StringComparer.Ordinal);
            for (int g = 0; g < groups.Count; g++)
            {
                foreach (DuplicateRange r in groups[g].Ranges)
                {
                    if (!grouped.TryGetValue(r.Path, out var list))
                    {
                        grouped[r.Path] = list = new List<(long, long, int)>();
                    }

                    list.Add((r.Offset, r.Length, g));
                }
            }

            return groups.Select((g, i) => WithKeeperThatStays(g, i, grouped, cancel)).ToList();
        }

        /// <summary>Per filesystem and extent, how many of its references the ranges of all the groups are over (made when first asked).</summary>
        private Dictionary<(Guid FileSystem, long Extent), int>? rangesOver;

        private Dictionary<(Guid FileSystem, long Extent), int> RangesOver(Dictionary<string, List<(long Offset, long Length, int Group)>> grouped)
        {
            if (rangesOver is null)
            {
                rangesOver = new Dictionary<(Guid, long), int>();
                var extents = new List<long>();
                foreach ((string path, List<(long Offset, long Length, int Group)> ranges) in grouped)
                {
                    if (ReferencesOf(path) is not { IsItems: true } refs)
                    {
                        continue;
                    }

                    // Each reference the ranges of all groups on the file cover whole, once (a file may refer to an extent more
                    // than once; one reference may be split between two groups' ranges). One they cover only in part keeps its
                    // extent whatever is deduplicated, as a reference outside every group does. (Before: one count per range over
                    // any part of it, so a reference split between two groups counted twice and hid a reference outside them;
                    // a hostile test.)
                    var merged = new List<(long Start, long End)>();
                    foreach ((long offset, long length, int _) in ranges.OrderBy(x => x.Offset))
                    {
                        if (merged.Count > 0 && offset <= merged[^1].End)
                        {
                            merged[^1] = (merged[^1].Start, Math.Max(merged[^1].End, offset + length));
                        }
                        else
                        {
                            merged.Add((offset, offset + length));
                        }
                    }

                    extents.Clear();
                    refs.ExtentsCoveredWhole(merged, extents);
                    foreach (long e in extents)
                    {
                        rangesOver[(refs.FileSystem, e)] = rangesOver.GetValueOrDefault((refs.FileSystem, e)) + 1;
                    }
                }
            }

            return rangesOver;
        }

        private BtrfsDuplicateGroup WithKeeperThatStays(BtrfsDuplicateGroup group, int index, Dictionary<string, List<(long Offset, long Length, int Group)>> grouped, CancellationToken cancel)
        {
            cancel.ThrowIfCancellationRequested();
            if (group.Ranges.Length < 2 || group.AlreadySharedBytes != 0)
            {
                return group;
            }

            // Only away from a first copy whose extents no other group reaches and that would go whole: then a copy
            // whose extents are shared with a file or snapshot no copy of the group is (the search put one shared with
            // other copies first already), which keep them on disk anyway, or else the copy with the most bytes that
            // stay anyway is kept. A first copy reached by other groups too is left the keeper (where its extent goes
            // depends on them: moving away from it split files and freed nothing more; a review). (Before: a copy
            // whose extent a snapshot holds was never kept, so deduplicating it freed nothing and the others were
            // left; a hostile review.)
            int best = 0, sharedElsewhere = 0;
            long most = 0;
            var sharedOnes = new List<(int Range, Guid FileSystem, List<long> Extents)>();
            for (int i = 0; i < group.Ranges.Length; i++)
            {
                DuplicateRange r = group.Ranges[i];
                if (ReferencesOf(r.Path) is not { IsItems: true } refs)
                {
                    return group;
                }

                var extents = new List<long>();
                if (i > 0 && refs.AllShared(r.Offset, r.Length, extents))
                {
                    sharedOnes.Add((i, refs.FileSystem, extents));
                    continue;
                }

                (long stays, bool alone) = refs.Staying(r.Offset, r.Length, grouped[r.Path], index);
                if (stays < 0 || (i == 0 && (stays != 0 || !alone)))
                {
                    return group; // over an extent shared with another file (copies may share it with each other), or the first is as good
                }

                if (stays > most)
                {
                    (best, most) = (i, stays);
                }
            }

            // Shared, and with more references on the filesystem than the ranges of all the groups are over: the others are
            // files or snapshots outside every group (or parts of files no group reaches), which keep those extents whatever
            // is deduplicated, so keeping this copy frees the rest. (A review: where only other groups' ranges shared the
            // extent, a group could have freed it, and keeping this copy pinned it. Before, any other range over the extent
            // ruled a copy out, also one of this group: a copy reflinked beside it and held by a backup outside was never
            // kept, and the group "freed nothing"; a hostile test.)
            foreach ((int range, Guid fileSystem, List<long> extents) in sharedOnes)
            {
                Dictionary<(Guid FileSystem, long Extent), int> over = RangesOver(grouped);
                if (extents.TrueForAll(e => sharedExtents.Left(fileSystem, e) is int references && references > over.GetValueOrDefault((fileSystem, e))))
                {
                    sharedElsewhere = range;
                    break;
                }
            }

            return sharedElsewhere > 0 ? group.WithKeeper(sharedElsewhere)
                : sharedOnes.Count > 0 || best == 0 ? group // over an extent copies share with each other: as before, the first stays the keeper
                : group.WithKeeper(best);
        }

        /// <summary>The disk bytes the group frees after those credited before it.</summary>
        internal long Credit(BtrfsDuplicateGroup group, CancellationToken cancel = default)
        {
            cancel.ThrowIfCancellationRequested();
            long freed = 0;
            for (int i = 1; i < group.Ranges.Length; i++)
            {
                DuplicateRange r = group.Ranges[i];
                freed += ReferencesOf(r.Path)?.Cover(r.Offset, r.Length) ?? 0;
            }

            return freed;
        }

        private FileReferences? ReferencesOf(string path)
        {
            if (!files.TryGetValue(path, out FileReferences? refs))
            {
                refs = FileReferences.Read(path, taken?.Invoke(path), sharedExtents);
                files[path] = refs;
            }

            return refs;
        }

        /// <summary>
        /// After every group is credited: the group's ranges, each non-keeper range marked
        /// <see cref="DuplicateRange.FreesNothing"/> when every extent it covers stays even with every group
        /// deduplicated because the file still uses another part of it (a bookend). Only where that is
        /// known exactly: on btrfs from the file extent items (root), and on xfs (block by block). A range
        /// over a shared extent is marked only where all the extent's references on the filesystem were counted
        /// (btrfs, root) and some stay uncovered (another file's, a snapshot's, the keeper's after an earlier
        /// run), not one whose file could not be read: what cannot be judged is not left out.
        /// </summary>
        internal DuplicateRange[] Mark(BtrfsDuplicateGroup group, CancellationToken cancel = default)
        {
            cancel.ThrowIfCancellationRequested();
            var ranges = (DuplicateRange[])group.Ranges.Clone();
            for (int i = 1; i < ranges.Length; i++)
            {
                DuplicateRange r = ranges[i];
                if (files.TryGetValue(r.Path, out FileReferences? refs) && refs is not null && !refs.Frees(r.Offset, r.Length))
                {
                    ranges[i] = r.AsFreeingNothing();
                }
            }

            return ranges;
        }

        /// <summary>
        /// Extents shared with other files or snapshots (btrfs, as root), per filesystem (addresses repeat from one
        /// filesystem to the next): how many of each one's references no group covers yet, counted when first asked
        /// (LOGICAL_INO_V2 through a file of that filesystem kept open; references of subvolumes being deleted left
        /// out: they go with the cleaner; null: not counted), and which references were covered (a file named twice,
        /// by hard links, covers its reference once).
        /// </summary>
        private sealed class SharedExtents : IDisposable
        {
            private readonly Dictionary<(Guid Fs, long Extent), int?> left = new();
            private readonly HashSet<(Guid Fs, long Extent, ulong Inode, ulong Offset, ulong Root)> covered = new();
            private readonly Dictionary<Guid, OpenFile> anchors = new();
            private readonly Dictionary<(Guid Fs, ulong Root), bool> live = new();
            private byte[] buffer = new byte[64 * 1024];

            /// <summary>Keeps <paramref name="file"/> open to count the extents of its filesystem, unless one is kept already; true when kept.</summary>
            internal bool Adopt(Guid fs, OpenFile file) => anchors.TryAdd(fs, file);

            /// <summary>References of the extent not covered yet; null when they could not be counted.</summary>
            internal int? Left(Guid fs, long extent)
            {
                if (left.TryGetValue((fs, extent), out int? n))
                {
                    return n;
                }

                int? counted = Count(fs, extent);
                left[(fs, extent)] = counted;
                return counted;
            }

            /// <summary>Covers one reference (the item of inode <paramref name="inode"/> at <paramref name="offset"/> in subvolume <paramref name="root"/>); true when it was the extent's last.</summary>
            internal bool Cover(Guid fs, long extent, ulong inode, ulong offset, ulong root)
            {
                if (Left(fs, extent) is int k && k > 0 && covered.Add((fs, extent, inode, offset, root)))
                {
                    left[(fs, extent)] = k - 1;
                    return k == 1;
                }

                return false;
            }

            /// <inheritdoc/>
            public void Dispose()
            {
                foreach (OpenFile f in anchors.Values)
                {
                    f.Dispose();
                }

                anchors.Clear();
            }

            private int? Count(Guid fs, long extent)
            {
                if (!anchors.TryGetValue(fs, out OpenFile? anchor))
                {
                    return null;
                }

                var refs = new List<ExtentReference>();
                int errno = BtrfsInspect.TryReferences(anchor.Handle, (ulong)extent, ref buffer, refs, out long missed);
                if (errno != 0 || missed != 0 || refs.Count == 0)
                {
                    return null;
                }

                int n = 0;
                foreach (ExtentReference r in refs)
                {
                    if (!live.TryGetValue((fs, r.Root), out bool alive))
                    {
                        alive = r.Root == BtrfsInspect.TopLevelId || BtrfsInspect.BackrefOf(anchor, r.Root) is not null;
                        live[(fs, r.Root)] = alive;
                    }

                    n += alive ? 1 : 0;
                }

                return n;
            }
        }

        /// <summary>One file's references to its extents, and how far they are covered.</summary>
        private sealed class FileReferences
        {
            private readonly List<Reference> references = new();
            private readonly Dictionary<long, int> uncovered = new(); // extent -> references not fully covered yet
            private SharedExtents? sharedExtents; // where shared extents are counted across files (btrfs items, root)
            private Guid fileSystem;
            private ulong inode, root;

            /// <summary>The filesystem the file is on (extents are numbered per filesystem).</summary>
            internal Guid FileSystem => fileSystem;
            private bool blockByBlock;

            /// <summary>The file's size: a range that reaches it covers the file's last block whole (up to <see cref="dataEnd"/>: the rest of a partial last block is past the end of the file).</summary>
            private long size;

            /// <summary>The file's size rounded up to the filesystem's block: where its last block ends (an extent preallocated past it is not covered).</summary>
            private long dataEnd;

            /// <summary>Whether the references are the file's real extents (btrfs items, or xfs blocks), not FIEMAP pieces that may merge or split them.</summary>
            private bool exact;

            /// <summary>The references of the file at <paramref name="path"/>; null when it cannot be read, or is no longer the file <paramref name="expected"/> was taken as (replaced or changed since).</summary>
            internal static FileReferences? Read(string path, FileStatus? expected, SharedExtents sharedExtents)
            {
                OpenFile? file = null;
                bool kept = false;
                try
                {
                    file = OpenFile.Open(path, OpenOptions.NoFollow);
                    if (expected is FileStatus st && !file.Status.SameContentStamp(st))
                    {
                        return null; // another file under that name now, or this one changed: nothing of it is judged
                    }

                    if (file.FileSystem.Kind is not (FileSystemKind.Btrfs or FileSystemKind.Xfs) || Deduplicator.SharesNoExtents(file))
                    {
                        return null; // nothing can share extents there (an xfs made without reflink neither: a hostile review): deduplicating frees nothing
                    }

                    long block = Clone.BlockSize(file.Handle);
                    var refs = new FileReferences { size = file.Size, dataEnd = (file.Size + block - 1) / block * block };
                    var shared = new List<(long Start, long End)>();
                    foreach (FileExtent e in ExtentMap.Read(file, new ExtentQuery()))
                    {
                        if (!e.IsHole && e.IsShared)
                        {
                            shared.Add((e.LogicalOffset, e.EndOffset));
                        }
                    }

                    if (file.FileSystem.Kind == FileSystemKind.Btrfs && TryItems(file, refs, shared))
                    {
                        refs.exact = true;
                        if (refs.references.Exists(r => r.Shared) && BtrfsSearch.FileSystemId(file) is Guid fs)
                        {
                            // Shared extents are counted when a range reaches them, through one file of the filesystem kept open.
                            refs.sharedExtents = sharedExtents;
                            refs.fileSystem = fs;
                            refs.inode = file.Status.Inode;
                            refs.root = SubvolumeMap.SubvolumeIdOf(file);
                            kept = sharedExtents.Adopt(fs, file);
                        }

                        return refs;
                    }

                    refs.references.Clear();
                    refs.uncovered.Clear();
                    refs.blockByBlock = file.FileSystem.Kind == FileSystemKind.Xfs;
                    refs.exact = refs.blockByBlock;
                    foreach (FileExtent e in ExtentMap.Read(file, new ExtentQuery()))
                    {
                        if (!e.IsHole && !e.IsInline && !e.IsUnwritten)
                        {
                            // Without the items each piece stands for its own extent (an estimate on btrfs: FIEMAP splits an extent a file uses in parts, and merges adjacent extents).
                            refs.Add(new Reference(e.LogicalOffset, e.Length, e.PhysicalOffset, e.IsCompressed ? 0 : e.Length, e.IsShared));
                        }
                    }

                    return refs;
                }
                catch (Exception ex) when (ex is FileOperationException or InvalidOperationException)
                {
                    return null; // gone, unreadable or not understood since the search: it frees nothing
                }
                finally
                {
                    if (!kept)
                    {
                        file?.Dispose();
                    }
                }
            }

            private static bool TryItems(OpenFile file, FileReferences refs, List<(long Start, long End)> shared)
            {
                int next = 0;
                try
                {
                    foreach (BtrfsFileExtentRecord item in BtrfsFileExtents.Read(file))
                    {
                        if (!item.IsDataExtent)
                        {
                            continue;
                        }

                        long start = (long)item.FileOffset, length = (long)item.NumBytes;
                        while (next < shared.Count && shared[next].End <= start)
                        {
                            next++;
                        }

                        bool isShared = next < shared.Count && shared[next].Start < ByteRange.EndOf(start, length);
                        refs.Add(new Reference(start, length, (long)item.DiskBytenr, (long)item.DiskNumBytes, isShared));
                    }

                    return true;
                }
                catch (FileOperationException ex) when (ex.Kind == FileErrorKind.AccessDenied)
                {
                    return false;
                }
            }

            /// <summary>Whether the references are the file's btrfs file extent items (exact, freed extent by extent).</summary>
            internal bool IsItems => exact && !blockByBlock;

            private void Add(Reference r)
            {
                references.Add(r);
                uncovered[r.Extent] = uncovered.TryGetValue(r.Extent, out int n) ? n + 1 : 1;
            }

            /// <summary>
            /// Every reference [offset, offset + length) is over is to an extent shared with other files or snapshots (and
            /// there is one); its extents are added to <paramref name="extents"/>.
            /// </summary>
            internal bool AllShared(long offset, long length, List<long> extents)
            {
                long end = EndOf(offset, length);
                bool any = false;
                for (int i = First(offset); i < references.Count && references[i].Start < end; i++)
                {
                    Reference r = references[i];
                    if (Math.Min(r.End, end) <= Math.Max(r.Start, offset))
                    {
                        continue;
                    }

                    if (!r.Shared)
                    {
                        return false;
                    }

                    extents.Add(r.Extent);
                    any = true;
                }

                return any;
            }

            /// <summary>
            /// The extents of the references that <paramref name="merged"/> (ranges in file order, neither overlapping nor
            /// touching) cover whole, one per reference, added to <paramref name="extents"/>.
            /// </summary>
            internal void ExtentsCoveredWhole(List<(long Start, long End)> merged, List<long> extents)
            {
                foreach ((long start, long stop) in merged)
                {
                    long end = EndOf(start, stop - start);
                    for (int i = First(start); i < references.Count && references[i].Start < end; i++)
                    {
                        if (references[i].Start >= start && references[i].Start + references[i].Length <= end)
                        {
                            extents.Add(references[i].Extent);
                        }
                    }
                }
            }

            /// <summary>
            /// Bytes of [offset, offset + length) in extents the file also uses where none of its ranges in any group
            /// (<paramref name="grouped"/>) reaches: they stay whatever is deduplicated (-1 where the range is over an
            /// extent shared with other files or snapshots); and whether no range of another group than
            /// <paramref name="group"/> is over an extent the range is over.
            /// </summary>
            internal (long Stays, bool Alone) Staying(long offset, long length, List<(long Offset, long Length, int Group)> grouped, int group)
            {
                if (groupsOf is null)
                {
                    (outside, groupsOf) = Reached(grouped);
                }

                long end = EndOf(offset, length), stays = 0;
                bool alone = true;
                for (int i = First(offset); i < references.Count && references[i].Start < end; i++)
                {
                    Reference r = references[i];
                    long bytes = Math.Min(r.End, end) - Math.Max(r.Start, offset);
                    if (bytes <= 0)
                    {
                        continue;
                    }

                    if (r.Shared)
                    {
                        return (-1, false);
                    }

                    stays += outside!.Contains(r.Extent) ? bytes : 0;
                    alone &= groupsOf.TryGetValue(r.Extent, out (int First, bool Several) by) && !by.Several && by.First == group;
                }

                return (stays, alone);
            }

            /// <summary>
            /// The extents the file uses somewhere no range of <paramref name="grouped"/> covers, and for each extent a range
            /// is over, the first group whose range it is and whether another group's is over it too. Linear in the references.
            /// </summary>
            private (HashSet<long> Outside, Dictionary<long, (int First, bool Several)> GroupsOf) Reached(List<(long Offset, long Length, int Group)> grouped)
            {
                var by = new Dictionary<long, (int First, bool Several)>();
                foreach ((long o, long l, int g) in grouped)
                {
                    long e = EndOf(o, l);
                    for (int i = First(o); i < references.Count && references[i].Start < e; i++)
                    {
                        long x = references[i].Extent;
                        by[x] = by.TryGetValue(x, out var seen) ? (seen.First, seen.Several || seen.First != g) : (g, false);
                    }
                }

                var spans = grouped.ConvertAll(g => (Start: g.Offset, End: EndOf(g.Offset, g.Length)));
                spans.Sort();
                var merged = new List<(long Start, long End)>();
                foreach ((long start, long end) in spans)
                {
                    if (merged.Count > 0 && start <= merged[^1].End)
                    {
                        merged[^1] = (merged[^1].Start, Math.Max(merged[^1].End, end));
                    }
                    else
                    {
                        merged.Add((start, end));
                    }
                }

                var found = new HashSet<long>();
                int m = 0;
                foreach (Reference r in references)
                {
                    while (m < merged.Count && merged[m].End <= r.Start)
                    {
                        m++;
                    }

                    // Inside when one merged span holds the whole reference (spans are merged: no two touch).
                    if (m >= merged.Count || merged[m].Start > r.Start || merged[m].End < r.End)
                    {
                        found.Add(r.Extent);
                    }
                }

                return (found, by);
            }

            private HashSet<long>? outside;
            private Dictionary<long, (int First, bool Several)>? groupsOf;

            /// <summary>Covers [offset, offset + length) and returns the disk bytes that frees.</summary>
            internal long Cover(long offset, long length)
            {
                long freed = 0, end = EndOf(offset, length);
                for (int i = First(offset); i < references.Count && references[i].Start < end; i++)
                {
                    Reference r = references[i];
                    long from = Math.Max(r.Start, offset), to = Math.Min(r.End, end);
                    if (to <= from || r.Covered >= r.Length)
                    {
                        continue;
                    }

                    r.Covered += to - from;
                    if (blockByBlock)
                    {
                        freed += r.Shared ? 0 : to - from;
                        continue;
                    }

                    if (r.Covered < r.Length)
                    {
                        continue;
                    }

                    bool last = --uncovered[r.Extent] == 0;
                    if (!r.Shared ? last : sharedExtents?.Cover(fileSystem, r.Extent, inode, (ulong)r.Start, root) == true)
                    {
                        freed += r.DiskBytes;
                    }
                }

                return freed;
            }

            /// <summary>
            /// Whether [offset, offset + length) may free something once everything credited is deduplicated:
            /// it covers part of an extent that goes then (block by block: any byte; a shared one when all its
            /// references on the filesystem are covered), or of a shared one whose references could not be counted,
            /// or the references are not known exactly (FIEMAP pieces: btrfs merges adjacent extents into one piece).
            /// </summary>
            internal bool Frees(long offset, long length)
            {
                if (!exact)
                {
                    return true;
                }

                long end = EndOf(offset, length);
                for (int i = First(offset); i < references.Count && references[i].Start < end; i++)
                {
                    Reference r = references[i];
                    if (Math.Min(r.End, end) > Math.Max(r.Start, offset)
                        && (blockByBlock || (r.Shared ? sharedExtents?.Left(fileSystem, r.Extent) is not int left || left == 0 : uncovered[r.Extent] == 0)))
                    {
                        return true;
                    }
                }

                return false;
            }

            private long EndOf(long offset, long length) => offset + length >= size ? Math.Max(dataEnd, offset + length) : offset + length;

            /// <summary>References are in file order and do not overlap: the first that ends after <paramref name="offset"/>.</summary>
            private int First(long offset)
            {
                int lo = 0, hi = references.Count;
                while (lo < hi)
                {
                    int mid = (lo + hi) / 2;
                    if (references[mid].Start + references[mid].Length <= offset)
                    {
                        lo = mid + 1;
                    }
                    else
                    {
                        hi = mid;
                    }
                }

                return lo;
            }
        }

        private sealed class Reference(long start, long length, long extent, long diskBytes, bool shared)
        {
            internal long Start { get; } = start;

            internal long Length { get; } = length;

            /// <summary>The first byte after it (at most long.MaxValue).</summary>
            internal long End => ByteRange.EndOf(Start, Length);

            internal long Extent { get; } = extent;

            internal long DiskBytes { get; } = diskBytes;

            internal bool Shared { get; } = shared;

            internal long Covered { get; set; }
        }
    }
}
