namespace Btrfs.Core
{
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// The trees one pipeline has walked, known by their starting directory's inode (not its spelling),
    /// so that a path inside one of them, or a tree that contains one of them, is not processed twice:
    /// <c>Set-NoCow . , ./sub -Recurse</c> and <c>Get-ChildItem -Recurse | Measure-Fragmentation -Recurse</c>
    /// count each file once. A file with two names (hard links), or one also named through a symbolic
    /// link to it, counts once per name, as it does in a walk.
    /// </summary>
    internal sealed class WalkedTrees
    {
        private readonly Dictionary<(uint Major, uint Minor, ulong Inode), (string Path, FileStatus Status)> roots = new();
        private readonly HashSet<(uint Major, uint Minor, ulong Inode)> notEntered = new();
        private readonly WalkFilter filter;
        private readonly bool crossFileSystems;

        /// <summary>Walks taken with <paramref name="filter"/>, entering other filesystems when <paramref name="crossFileSystems"/>.</summary>
        internal WalkedTrees(WalkFilter filter, bool crossFileSystems)
        {
            this.filter = filter;
            this.crossFileSystems = crossFileSystems;
        }

        /// <summary>Records that the directory <paramref name="path"/> (not followed if a link) is about to be walked.</summary>
        internal void Add(string path)
        {
            if (FileStatus.OfPath(path, followLinks: false) is { IsDirectory: true } st)
            {
                roots.TryAdd(Key(st), (path, st));
            }
        }

        /// <summary>The path of an earlier walk that started at this directory, or null.</summary>
        internal string? StartedAt(in FileStatus directory) => roots.TryGetValue(Key(directory), out var root) ? root.Path : null;

        /// <summary>Records that a walk could not read or enter the directory <paramref name="path"/> (it reported an error instead): nothing below it was reached.</summary>
        internal void NotEntered(string path)
        {
            if (FileStatus.OfPath(path, followLinks: false) is { IsDirectory: true } st)
            {
                notEntered.Add(Key(st));
            }
        }

        /// <summary>
        /// The starting directory of an earlier walk that already reached <paramref name="path"/> (given by
        /// the user, or piped), or null: it lies below that directory, within the walk's -Depth, below
        /// directories -Exclude did not leave out and the walk could read, on the same filesystem unless the walk
        /// crossed them, and the walk met it as a file or directory it processes: not itself a symbolic link, a
        /// mount point (a file bind-mounted into the tree included) or a special file, which the walk passed
        /// over. A path through a symbolic link is judged by its real path (the walk may have reached the file
        /// under that name).
        /// </summary>
        internal string? Covering(string path) => Covering(path, out _);

        /// <summary>As <see cref="Covering(string)"/>, with how many levels below that directory the path lies (1: in it).</summary>
        internal string? Covering(string path, out int level)
        {
            level = 0;
            if (roots.Count == 0)
            {
                return null;
            }

            if (FileStatus.OfPath(path, followLinks: false) is not FileStatus self || !(self.IsRegular || self.IsDirectory))
            {
                return null;
            }

            return Covering(path, self, resolved: false, out level);
        }

        private string? Covering(string path, FileStatus self, bool resolved, out int found)
        {
            found = 0;
            var chain = new List<FileStatus> { self }; // the path, then each directory up to (not including) the walked root
            string rest = System.IO.Path.GetFileName(path); // the path below dir
            string? dir = System.IO.Path.GetDirectoryName(path);
            for (int level = 1; !string.IsNullOrEmpty(dir); level++)
            {
                if (FileStatus.OfPath(dir, followLinks: false) is not FileStatus st)
                {
                    return null;
                }

                if (st.IsSymbolicLink)
                {
                    // The walk did not follow it; by its real path the file may lie in a walked tree all the same.
                    return !resolved && Files.RealPath(dir) is string real
                        ? Covering(System.IO.Path.Join(real, rest), self, resolved: true, out found)
                        : null;
                }

                if (notEntered.Contains(Key(st)))
                {
                    return null; // a directory the walk could not read (its own start included): nothing below it was reached
                }

                if (roots.TryGetValue(Key(st), out var root))
                {
                    found = level;
                    return Reached(chain, st, level) ? root.Path : null;
                }

                if (!filter.TakesDirectory(System.IO.Path.GetFileName(dir)))
                {
                    return null; // an excluded directory: nothing below it was walked by a root above it
                }

                chain.Add(st);
                rest = System.IO.Path.Join(System.IO.Path.GetFileName(dir), rest);
                dir = System.IO.Path.GetDirectoryName(dir);
            }

            return null;
        }

        /// <summary>
        /// How many levels below a directory <paramref name="level"/> levels below a walked root that walk
        /// processed: with -Depth, a walk started at that directory goes deeper, and only what lies below these is
        /// new to it.
        /// </summary>
        internal int LevelsReachedBelow(int level)
        {
            int reached = 0;
            while (filter.Depth is not null && filter.Enters(level + reached))
            {
                reached++;
            }

            return reached;
        }

        /// <summary>How many levels below <paramref name="root"/> a path the walk of it handed out lies (0: the root itself).</summary>
        internal static int LevelBelow(string root, string path)
        {
            if (path.Length <= root.Length)
            {
                return 0;
            }

            int level = 0;
            for (int i = root.TrimEnd('/').Length; i < path.Length; i++)
            {
                level += path[i] == '/' ? 1 : 0;
            }

            return level;
        }

        /// <summary>
        /// Within the walk's depth, and (unless it crossed filesystems) no step from a directory to an entry in it,
        /// from <paramref name="root"/> (the walked root as this path reaches it) down to the path, onto another
        /// filesystem or mount.
        /// </summary>
        private bool Reached(List<FileStatus> chain, in FileStatus root, int level)
        {
            // level 1: a child of the root, always reached; deeper: its parent (level - 1 below the root) was entered.
            if (level > 1 && !filter.Enters(level - 1))
            {
                return false;
            }

            if (crossFileSystems)
            {
                return true;
            }

            for (int i = 0; i < chain.Count; i++)
            {
                FileStatus entry = chain[i];
                FileStatus parent = i + 1 < chain.Count ? chain[i + 1] : root;
                bool otherDevice = entry.DevMajor != parent.DevMajor || entry.DevMinor != parent.DevMinor;
                bool otherMount = entry.MountId != 0 && parent.MountId != 0 && entry.MountId != parent.MountId;
                if (otherDevice || otherMount)
                {
                    return false;
                }
            }

            return true;
        }

        private static (uint, uint, ulong) Key(in FileStatus st) => (st.DevMajor, st.DevMinor, st.Inode);
    }
}
