namespace Btrfs.Core
{
    using System;
    using System.Buffers.Binary;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Linq;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>What a subvolume (or a set of them, measured together) holds, as qgroups count it, at one commit.</summary>
    public sealed class BtrfsSubvolumeUsage
    {
        /// <summary>The subvolume's id; 0 for a set measured together.</summary>
        public ulong Id { get; init; }

        /// <summary>
        /// The subvolume's UUID (Guid.Empty, all zeros, for a set and for the top level): piped on to Remove-BtrfsSubvolume or
        /// New-BtrfsSnapshot, the path is taken only while it still leads to this subvolume.
        /// </summary>
        public Guid Uuid { get; init; }

        /// <summary>The subvolume's path as it was given (null for a set).</summary>
        public string? Path { get; init; }

        /// <summary>What was measured: the path (or "id N"), or for a set "N subvolumes: ids".</summary>
        public string Subvolume { get; init; } = string.Empty;

        /// <summary>How many subvolumes were measured together (1 for one).</summary>
        public int Count { get; init; }

        /// <summary>The ids measured, in order (a list, so it binds to -Id: never one number made of several).</summary>
        public ulong[] Ids { get; init; } = Array.Empty<ulong>();

        /// <summary>Bytes of every extent it references, data and tree blocks, whole extents (qgroup "rfer").</summary>
        public ulong ReferencedBytes { get; init; }

        /// <summary>Bytes referenced by it alone (for a set: by its members alone): what deleting it (them) would free (qgroup "excl").</summary>
        public ulong ExclusiveBytes { get; init; }

        /// <summary>Referenced bytes that something else references too.</summary>
        public ulong SharedBytes => ReferencedBytes - ExclusiveBytes;

        /// <summary>The data part of <see cref="ReferencedBytes"/>.</summary>
        public ulong ReferencedDataBytes { get; init; }

        /// <summary>The data part of <see cref="ExclusiveBytes"/> (without tree blocks).</summary>
        public ulong ExclusiveDataBytes { get; init; }

        /// <summary>The filesystem generation (commit) the figures are of.</summary>
        public ulong Generation { get; init; }

        /// <inheritdoc/>
        public override string ToString() => Subvolume;
    }

    /// <summary>How far a measurement is: tree blocks read, at which level, data extents found.</summary>
    internal readonly record struct SubvolumeSpaceProgress(long BlocksRead, int Level, int Extents, int Attempt);

    /// <summary>
    /// The space of every subvolume of one btrfs at one commit: for each distinct set of subvolumes
    /// (interned), the bytes of the extents and tree blocks referenced by exactly that set. Every
    /// question about one subvolume or a set is a sum over these.
    /// </summary>
    internal sealed class SubvolumeSpace
    {
        private readonly RootSets sets;
        private readonly Dictionary<int, (ulong Data, ulong Metadata)> totals;

        internal SubvolumeSpace(ulong generation, RootSets sets, Dictionary<int, (ulong Data, ulong Metadata)> totals, HashSet<ulong> roots)
        {
            Generation = generation;
            this.sets = sets;
            this.totals = totals;
            Roots = roots;
        }

        internal SubvolumeSpace(SubvolumeSpace space, int attempts)
            : this(space.Generation, space.sets, space.totals, space.Roots)
        {
            Attempts = attempts;
        }

        /// <summary>The commit measured.</summary>
        internal ulong Generation { get; }

        /// <summary>How many readings it took (more than one when the filesystem moved on during one).</summary>
        internal int Attempts { get; init; } = 1;

        /// <summary>The ids of the subvolumes the filesystem has (not deleted ones still being cleaned up or held open).</summary>
        internal HashSet<ulong> Roots { get; }

        /// <summary>Referenced and exclusive bytes (total, data) of the members together: referenced by any of them; exclusive = referenced by none but them.</summary>
        internal (ulong Referenced, ulong Exclusive, ulong ReferencedData, ulong ExclusiveData) Of(IReadOnlyCollection<ulong> members)
        {
            var wanted = new HashSet<ulong>(members);
            ulong rfer = 0, excl = 0, rferData = 0, exclData = 0;
            foreach ((int set, (ulong data, ulong meta)) in totals)
            {
                ulong[] ids = sets.Members(set);
                int inside = ids.Count(wanted.Contains);
                if (inside == 0)
                {
                    continue;
                }

                rfer += data + meta;
                rferData += data;
                if (inside == ids.Length)
                {
                    excl += data + meta;
                    exclData += data;
                }
            }

            return (rfer, excl, rferData, exclData);
        }
    }

    /// <summary>Interned sets of subvolume ids (sorted arrays), with unions cached: most extents share a few sets.</summary>
    internal sealed class RootSets
    {
        private readonly List<ulong[]> members = new() { Array.Empty<ulong>() };
        private readonly Dictionary<string, int> index = new(StringComparer.Ordinal) { [string.Empty] = 0 };
        private readonly Dictionary<(int, int), int> unions = new();

        /// <summary>The empty set.</summary>
        internal const int Empty = 0;

        internal ulong[] Members(int set) => members[set];

        internal int Single(ulong id) => Intern(new[] { id });

        internal int Union(int a, int b)
        {
            if (a == b || b == Empty)
            {
                return a;
            }

            if (a == Empty)
            {
                return b;
            }

            (int, int) key = a < b ? (a, b) : (b, a);
            if (!unions.TryGetValue(key, out int u))
            {
                u = Intern(members[a].Union(members[b]).OrderBy(x => x).ToArray());
                unions[key] = u;
            }

            return u;
        }

        internal int Without(int set, ulong id) =>
            Array.BinarySearch(members[set], id) < 0 ? set : Intern(members[set].Where(x => x != id).ToArray());

        private int Intern(ulong[] sorted)
        {
            string key = string.Join(',', sorted);
            if (!index.TryGetValue(key, out int id))
            {
                id = members.Count;
                members.Add(sorted);
                index[key] = id;
            }

            return id;
        }
    }

    /// <summary>
    /// Measures every subvolume of a btrfs exactly as qgroups count them, without qgroups: after a
    /// commit, the committed trees are read from the block devices (<see cref="BtrfsDisk"/>, every
    /// block checked), each distinct tree block once, top level first, so that the set of subvolumes
    /// reaching a block is complete before it is read; a leaf's file extent items give the data extents
    /// (whole extents, compressed size, bookends counted whole). A subvolume deleted but still being
    /// cleaned counts for what its tree still holds (right of its drop progress). Where the filesystem
    /// moves on during the walk (a block the commit pointed to is reused), it starts again from the new
    /// commit.
    /// </summary>
    internal static class SubvolumeSpaceMeter
    {
        private const int MaxLevels = 8;
        private const int Attempts = 5;

        /// <summary>
        /// Measures the filesystem of <paramref name="fd"/>. <paramref name="afterSuperblock"/> (tests: a
        /// filesystem changed between the two) is called after the superblock of each attempt was read,
        /// before its trees are.
        /// </summary>
        internal static SubvolumeSpace Measure(SafeFileDescriptor fd, string path, CancellationToken cancel, Action<SubvolumeSpaceProgress>? progress = null, Action<int>? afterSuperblock = null)
        {
            // Whoever may not read the devices and trees (not root) is refused before the commit, which flushes
            // the whole filesystem for everyone (-WhatIf is asked for without root, too).
            BtrfsDisk.Open(fd, path).Dispose();
            string? lastWhy = null;
            for (int attempt = 1; attempt <= Attempts; attempt++)
            {
                // Commit first, so what was written is in the trees on disk (delayed refs included); then
                // the devices and the chunk map, afresh each time (a balance moves the trees to new chunks).
                int errno = BtrfsSubvolumes.TryCommitAndClean(fd);
                if (errno != 0)
                {
                    throw FileOperationException.FromErrno(errno, "BTRFS_IOC_SYNC", path, "Cannot commit the filesystem of", errno is Errno.EPERM or Errno.EACCES ? BtrfsSearch.NeedsRoot("SYNC") : null);
                }

                using BtrfsDisk disk = BtrfsDisk.Open(fd, path);

                BtrfsSuperblock sb = disk.ReadSuperblock();
                afterSuperblock?.Invoke(attempt);
                if (TryWalk(disk, sb, attempt, cancel, progress, out SubvolumeSpace? space, out lastWhy))
                {
                    return new SubvolumeSpace(space!, attempt);
                }

                if (disk.ReadSuperblock().Generation == sb.Generation)
                {
                    // Nothing was committed meanwhile: the block is damaged, not reused.
                    throw new FileOperationException(FileErrorKind.IOError, 0, "read", path, $"Cannot measure the subvolumes of the filesystem of '{path}': {lastWhy}. Check the filesystem (dmesg, btrfs device stats, btrfs scrub).");
                }
            }

            throw new FileOperationException(FileErrorKind.FileSystemKeptChanging, Errno.EAGAIN, "read", path, $"Cannot measure the subvolumes of the filesystem of '{path}': it kept changing under {Attempts} attempts ({lastWhy}). Try again when it is quieter.");
        }

        private static bool TryWalk(BtrfsDisk disk, BtrfsSuperblock sb, int attempt, CancellationToken cancel, Action<SubvolumeSpaceProgress>? progress, out SubvolumeSpace? space, out string? why)
        {
            space = null;
            var sets = new RootSets();
            var pending = new Dictionary<ulong, (ulong Generation, int Set)>[MaxLevels];
            for (int l = 0; l < MaxLevels; l++)
            {
                pending[l] = new Dictionary<ulong, (ulong, int)>();
            }

            // 1. The root tree: every subvolume's root item (deleted ones still being cleaned too).
            if (!TryReadRoots(disk, sb, cancel, out List<BtrfsDiskRoot> roots, out why))
            {
                return false;
            }

            var dying = new Dictionary<ulong, BtrfsKey>();
            foreach (BtrfsDiskRoot r in roots)
            {
                if (r.Level >= MaxLevels)
                {
                    why = $"subvolume {r.Id} has a tree of level {r.Level}";
                    return false;
                }

                if (r.Refs == 0 && r.DropProgress.ObjectId != 0)
                {
                    dying[r.Id] = r.DropProgress;
                }

                if (!Add(pending[r.Level], r.ByteNr, r.Generation, sets.Single(r.Id), sets, out why))
                {
                    return false;
                }
            }

            // 2. Every distinct tree block of the subvolumes, top level first.
            var totals = new Dictionary<int, (ulong Data, ulong Metadata)>();
            var extents = new Dictionary<ulong, (int Set, ulong Size)>();
            long lastReport = 0;
            for (int level = MaxLevels - 1; level >= 0; level--)
            {
                ulong[] order = pending[level].Keys.ToArray();
                Array.Sort(order); // in address order: the devices are read forwards
                foreach (ulong bytenr in order)
                {
                    cancel.ThrowIfCancellationRequested();
                    (ulong generation, int set) = pending[level][bytenr];
                    if (!disk.TryReadBlock(sb, bytenr, generation, level, out BtrfsTreeBlock block, out why))
                    {
                        return false;
                    }

                    totals.TryGetValue(set, out var t);
                    totals[set] = (t.Data, t.Metadata + sb.NodeSize);
                    if (level > 0)
                    {
                        for (int i = 0; i < block.Count; i++)
                        {
                            (BtrfsKey _, ulong child, ulong childGeneration) = block.Pointer(i);
                            int childSet = set;
                            if (dying.Count > 0 && i + 1 < block.Count)
                            {
                                // A child whose keys all lie before a deleted subvolume's drop progress was dropped from it already.
                                BtrfsKey next = block.Pointer(i + 1).Key;
                                foreach ((ulong id, BtrfsKey drop) in dying)
                                {
                                    if (next.CompareTo(drop) <= 0)
                                    {
                                        childSet = sets.Without(childSet, id);
                                    }
                                }
                            }

                            if (childSet != RootSets.Empty && !Add(pending[level - 1], child, childGeneration, childSet, sets, out why))
                            {
                                return false;
                            }
                        }
                    }
                    else
                    {
                        for (int i = 0; i < block.Count; i++)
                        {
                            if (block.TryDataExtent(i, out ulong diskByteNr, out ulong size))
                            {
                                extents[diskByteNr] = extents.TryGetValue(diskByteNr, out var e) ? (sets.Union(e.Set, set), e.Size) : (set, size);
                            }
                        }
                    }

                    if (progress is not null && disk.BlocksRead - lastReport >= 256)
                    {
                        lastReport = disk.BlocksRead;
                        progress(new SubvolumeSpaceProgress(disk.BlocksRead, level, extents.Count, attempt));
                    }
                }

                pending[level].Clear();
                pending[level].TrimExcess();
            }

            foreach ((int set, ulong size) in extents.Values)
            {
                totals.TryGetValue(set, out var t);
                totals[set] = (t.Data + size, t.Metadata);
            }

            // A deleted subvolume (no references left, its tree kept while a process holds it or the cleaner
            // has not dropped it yet) is counted in the others' sharing, as qgroups do, but is not one of them.
            space = new SubvolumeSpace(sb.Generation, sets, totals, roots.Where(r => r.Refs != 0).Select(r => r.Id).ToHashSet());
            return true;
        }

        private static bool Add(Dictionary<ulong, (ulong Generation, int Set)> level, ulong bytenr, ulong generation, int set, RootSets sets, out string? why)
        {
            why = null;
            if (level.TryGetValue(bytenr, out var seen))
            {
                if (seen.Generation != generation)
                {
                    why = $"two pointers to the block at {bytenr} disagree on its generation";
                    return false;
                }

                level[bytenr] = (generation, sets.Union(seen.Set, set));
            }
            else
            {
                level[bytenr] = (generation, set);
            }

            return true;
        }

        /// <summary>The root items of the subvolumes (5 and 256 up), read from the committed root tree.</summary>
        private static bool TryReadRoots(BtrfsDisk disk, BtrfsSuperblock sb, CancellationToken cancel, out List<BtrfsDiskRoot> roots, out string? why)
        {
            var found = new Dictionary<ulong, BtrfsDiskRoot>();
            roots = new List<BtrfsDiskRoot>();
            var stack = new Stack<(ulong ByteNr, ulong Generation, int Level)>();
            stack.Push((sb.RootTree, sb.Generation, sb.RootLevel));
            while (stack.Count > 0)
            {
                cancel.ThrowIfCancellationRequested();
                (ulong bytenr, ulong generation, int level) = stack.Pop();
                if (!disk.TryReadBlock(sb, bytenr, generation, level, out BtrfsTreeBlock block, out string w))
                {
                    why = w;
                    return false;
                }

                for (int i = block.Count - 1; i >= 0; i--)
                {
                    if (level > 0)
                    {
                        (BtrfsKey _, ulong child, ulong childGeneration) = block.Pointer(i);
                        stack.Push((child, childGeneration, level - 1));
                        continue;
                    }

                    if (!block.TrySubvolumeRoot(i, out BtrfsDiskRoot r))
                    {
                        continue;
                    }

                    if (!found.TryGetValue(r.Id, out BtrfsDiskRoot other) || other.KeyOffset <= r.KeyOffset)
                    {
                        found[r.Id] = r;
                    }
                }
            }

            roots.AddRange(found.Values.OrderBy(r => r.Id));
            why = null;
            return true;
        }

        /// <summary>"id N" / "N subvolumes: a, b, c" for a result object.</summary>
        internal static string Label(IReadOnlyList<ulong> ids) =>
            ids.Count == 1 ? "id " + ids[0].ToString(CultureInfo.InvariantCulture) : ids.Count.ToString(CultureInfo.InvariantCulture) + " subvolumes: " + string.Join(", ", ids);
    }
}
