namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
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
    internal sealed class ReclaimLedger(Func<string, FileStatus?>? taken = null)
    {
        private readonly Dictionary<string, FileReferences?> files = new(StringComparer.Ordinal);
        private readonly SharedExtents sharedExtents = new();

        /// <summary>The disk bytes the group frees after those credited before it.</summary>
        internal long Credit(BtrfsDuplicateGroup group, CancellationToken cancel = default)
        {
            cancel.ThrowIfCancellationRequested();
            long freed = 0;
            for (int i = 1; i < group.Ranges.Length; i++)
            {
                DuplicateRange r = group.Ranges[i];
                if (!files.TryGetValue(r.Path, out FileReferences? refs))
                {
                    refs = FileReferences.Read(r.Path, taken?.Invoke(r.Path), sharedExtents);
                    files[r.Path] = refs;
                }

                freed += refs?.Cover(r.Offset, r.Length) ?? 0;
            }

            return freed;
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
        /// Extents shared with other files or snapshots (btrfs, as root): how many of each one's references on the
        /// whole filesystem no group covers yet (null: not counted), and which references were covered (a file named
        /// twice, by hard links, covers its reference once).
        /// </summary>
        private sealed class SharedExtents
        {
            private readonly Dictionary<long, int?> left = new();
            private readonly HashSet<(long Extent, ulong Inode, ulong Offset, ulong Root)> covered = new();
            private byte[] buffer = new byte[64 * 1024];

            /// <summary>Counts the references of <paramref name="extent"/> (through <paramref name="file"/>, on its filesystem) unless known.</summary>
            internal void Count(OpenFile file, long extent)
            {
                if (left.ContainsKey(extent))
                {
                    return;
                }

                var refs = new List<ExtentReference>();
                int errno = BtrfsInspect.TryReferences(file.Handle, (ulong)extent, ref buffer, refs, out long missed);
                left[extent] = errno == 0 && missed == 0 && refs.Count > 0 ? refs.Count : null;
            }

            /// <summary>References of the extent not covered yet; null when they could not be counted.</summary>
            internal int? Left(long extent) => left.TryGetValue(extent, out int? n) ? n : null;

            /// <summary>Covers one reference (the item of inode <paramref name="inode"/> at <paramref name="offset"/> in subvolume <paramref name="root"/>); true when it was the extent's last.</summary>
            internal bool Cover(long extent, ulong inode, ulong offset, ulong root)
            {
                if (left.TryGetValue(extent, out int? n) && n is int k && k > 0 && covered.Add((extent, inode, offset, root)))
                {
                    left[extent] = k - 1;
                    return k == 1;
                }

                return false;
            }
        }

        /// <summary>One file's references to its extents, and how far they are covered.</summary>
        private sealed class FileReferences
        {
            private readonly List<Reference> references = new();
            private readonly Dictionary<long, int> uncovered = new(); // extent -> references not fully covered yet
            private SharedExtents? sharedExtents; // where shared extents are counted across files (btrfs items, root)
            private ulong inode, root;
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
                try
                {
                    using OpenFile file = OpenFile.Open(path, OpenOptions.NoFollow);
                    if (expected is FileStatus st && !file.Status.SameContentStamp(st))
                    {
                        return null; // another file under that name now, or this one changed: nothing of it is judged
                    }

                    if (file.FileSystem.Kind is not (FileSystemKind.Btrfs or FileSystemKind.Xfs))
                    {
                        return null; // nothing can share extents there: deduplicating frees nothing
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
                        if (refs.references.Exists(r => r.Shared))
                        {
                            refs.sharedExtents = sharedExtents;
                            refs.inode = file.Status.Inode;
                            refs.root = SubvolumeMap.SubvolumeIdOf(file);
                            foreach (Reference r in refs.references)
                            {
                                if (r.Shared)
                                {
                                    sharedExtents.Count(file, r.Extent);
                                }
                            }
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

                        bool isShared = next < shared.Count && shared[next].Start < start + length;
                        refs.Add(new Reference(start, length, (long)item.DiskBytenr, (long)item.DiskNumBytes, isShared));
                    }

                    return true;
                }
                catch (FileOperationException ex) when (ex.Kind == FileErrorKind.AccessDenied)
                {
                    return false;
                }
            }

            private void Add(Reference r)
            {
                references.Add(r);
                uncovered[r.Extent] = uncovered.TryGetValue(r.Extent, out int n) ? n + 1 : 1;
            }

            /// <summary>Covers [offset, offset + length) and returns the disk bytes that frees.</summary>
            internal long Cover(long offset, long length)
            {
                long freed = 0, end = EndOf(offset, length);
                for (int i = First(offset); i < references.Count && references[i].Start < end; i++)
                {
                    Reference r = references[i];
                    long from = Math.Max(r.Start, offset), to = Math.Min(r.Start + r.Length, end);
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
                    if (!r.Shared ? last : sharedExtents?.Cover(r.Extent, inode, (ulong)r.Start, root) == true)
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
                    bool goes = blockByBlock || (r.Shared ? sharedExtents?.Left(r.Extent) is not int left || left == 0 : uncovered[r.Extent] == 0);
                    if (Math.Min(r.Start + r.Length, end) > Math.Max(r.Start, offset) && goes)
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

            internal long Extent { get; } = extent;

            internal long DiskBytes { get; } = diskBytes;

            internal bool Shared { get; } = shared;

            internal long Covered { get; set; }
        }
    }
}
