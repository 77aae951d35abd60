namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// Measure-BtrfsUsage's Core: compsize's accounting per file from the file's EXTENT_DATA items
    /// (one TREE_SEARCH pass, as compsize), and for many files merged in input order so every
    /// distinct extent counts once. Memory grows with the distinct extents, not with files or references.
    /// </summary>
    public static class BtrfsUsageMeter
    {
        /// <summary>
        /// One file's figures, with the bytes FIEMAP marks shared. Throws
        /// <see cref="FileOperationException"/> (NotSupported off btrfs, AccessDenied without root).
        /// </summary>
        internal static BtrfsFileUsage Measure(OpenFile file, OtherReferences? known = null)
        {
            UsageCounters c = Count(file, known);
            return new BtrfsFileUsage(file.Path, file.Size, c, SharedBytes(file));
        }

        /// <summary>The figures of one file, as `compsize FILE`; the counters can be merged into a summary.</summary>
        internal static UsageCounters Count(OpenFile file, OtherReferences? known = null)
        {
            BtrfsOnly.Require(file, "measure the btrfs space usage of");
            var c = UsageCounters.For(BtrfsSearch.FileSystemUuid(file.Handle));
            c.AddFile(file.Size, BtrfsFileExtents.Read(file));
            c.AddOtherReferences(bytenr => BtrfsInspect.UsedRanges(file.Handle, file.Path, bytenr), known);
            return c;
        }

        /// <summary>
        /// Counts several files on <paramref name="parallelism"/> threads; outcomes in the order given.
        /// The files of one btrfs directory are read together by inode number from the directory's
        /// subvolume (<see cref="BtrfsFileExtents.ReadInodes"/>: a few searches for a directory of files,
        /// none of them opened), which is what makes a whole tree fast. A file that way misses (its name
        /// was removed or replaced after the listing, a hard link listed twice, a directory off btrfs, a
        /// search refused) is opened and counted alone, with that file's own error when it fails.
        /// </summary>
        internal static FileOutcome<UsageCounters>[] CountAll(IReadOnlyList<FileLocation> files, int parallelism, OtherReferences? known = null)
        {
            ArgumentNullException.ThrowIfNull(files);
            var outcomes = new FileOutcome<UsageCounters>[files.Count];
            var groups = new List<(int Start, int End)>();
            for (int i = 0; i < files.Count; i++)
            {
                if (i == 0 || !ReferenceEquals(files[i].Directory, files[i - 1].Directory))
                {
                    groups.Add((i, i + 1));
                }
                else
                {
                    groups[^1] = (groups[^1].Start, i + 1);
                }
            }

            var fileSystems = new FileSystemCache();
            System.Threading.Tasks.Parallel.For(0, groups.Count, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism) }, g =>
            {
                (int start, int end) = groups[g];
                CountDirectory(files, start, end, outcomes, known);
                for (int i = start; i < end; i++)
                {
                    outcomes[i] = outcomes[i].Result is null ? CountOne(files[i], fileSystems, known) : outcomes[i];
                }
            });
            return outcomes;
        }

        /// <summary>Files at most this far apart in inode number are read in one search (the inodes between cost a few items each).</summary>
        private const ulong InodeGap = 16;

        /// <summary>
        /// Counts the files [start, end) of one directory by inode number; leaves the outcome of a file it
        /// could not count that way empty (for <see cref="CountOne"/>).
        /// </summary>
        private static void CountDirectory(IReadOnlyList<FileLocation> files, int start, int end, FileOutcome<UsageCounters>[] outcomes, OtherReferences? known)
        {
            SafeFileDescriptor dir = files[start].Directory;
            if (Files.FileSystemOf(dir) is not { Kind: FileSystemKind.Btrfs })
            {
                return;
            }

            var wanted = new Dictionary<ulong, int>(end - start);
            for (int i = start; i < end; i++)
            {
                ulong ino = files[i].Inode;
                if (ino != 0)
                {
                    _ = wanted.TryAdd(ino, i); // a second name of the same inode is counted alone
                }
            }

            if (wanted.Count == 0)
            {
                return;
            }

            var sorted = new List<ulong>(wanted.Keys);
            sorted.Sort();
            var counted = new Dictionary<ulong, UsageCounters>(sorted.Count);
            Guid? uuid = BtrfsSearch.FileSystemUuid(dir);
            string dirPath = System.IO.Path.GetDirectoryName(files[start].Path) ?? files[start].Path;
            try
            {
                for (int r = 0; r < sorted.Count;)
                {
                    int last = r;
                    while (last + 1 < sorted.Count && sorted[last + 1] - sorted[last] <= InodeGap)
                    {
                        last++;
                    }

                    UsageCounters? current = null;
                    foreach (BtrfsInodeExtentItem item in BtrfsFileExtents.ReadInodes(dir, dirPath, sorted[r], sorted[last]))
                    {
                        if (item.IsInodeItem)
                        {
                            current = item.IsRegular && wanted.ContainsKey(item.Inode) ? UsageCounters.For(uuid) : null;
                            if (current is not null)
                            {
                                current.StartFile(item.Size);
                                counted[item.Inode] = current;
                            }
                        }
                        else
                        {
                            current?.Add(item.Extent);
                        }
                    }

                    r = last + 1;
                }
            }
            catch (FileOperationException)
            {
                return; // each file is tried alone and gets its own error
            }

            foreach ((ulong ino, int i) in wanted)
            {
                if (counted.TryGetValue(ino, out UsageCounters? c))
                {
                    try
                    {
                        c.AddOtherReferences(bytenr => BtrfsInspect.UsedRanges(dir, dirPath, bytenr), known);
                    }
                    catch (FileOperationException)
                    {
                        continue; // tried alone, with its own error
                    }

                    outcomes[i] = new FileOutcome<UsageCounters>(files[i].Path, c, null);
                }
            }
        }

        private static FileOutcome<UsageCounters> CountOne(FileLocation location, FileSystemCache fileSystems, OtherReferences? known)
        {
            try
            {
                using OpenFile file = OpenFile.Open(location, OpenOptions.KnownRegular, fileSystems);
                return new FileOutcome<UsageCounters>(location.Path, Count(file, known), null);
            }
            catch (FileOperationException ex)
            {
                return new FileOutcome<UsageCounters>(location.Path, null, ex);
            }
        }

        /// <summary>Measures several files on <paramref name="parallelism"/> threads; outcomes in the order given.</summary>
        internal static FileOutcome<BtrfsFileUsage>[] MeasureAll(IReadOnlyList<FileLocation> files, int parallelism, OtherReferences? known = null) =>
            FileBatch.Run(files, parallelism, file => Measure(file, known));

        /// <summary>Bytes of the file in extents FIEMAP flags as shared (FIEMAP_EXTENT_SHARED).</summary>
        internal static long SharedBytes(OpenFile file) => Fiemap.Shared(file.Handle, file.Path).Bytes;
    }

    /// <summary>
    /// Sums measurements into compsize's totals, in the order they are added (which decides the
    /// category of an extent seen under two: the first reference's, as compsize).
    /// </summary>
    public sealed class BtrfsUsageTotals
    {
        private readonly UsageCounters all = new();

        /// <summary>Files added so far.</summary>
        public long Files => all.Files;

        /// <summary>Adds one file's items (of a file already open).</summary>
        internal void Add(OpenFile file, OtherReferences? known = null) => all.Merge(BtrfsUsageMeter.Count(file, known));

        /// <summary>The totals so far.</summary>
        public BtrfsUsageSummary ToSummary() => new(all);

        internal void Add(UsageCounters file) => all.Merge(file);
    }
}
