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

        /// <summary>
        /// The starting directory of an earlier walk that already reached <paramref name="path"/> (given by
        /// the user, or piped), or null: it lies below that directory, within the walk's -Depth, below
        /// directories -Exclude did not leave out, on the same filesystem unless the walk crossed them, and
        /// the walk met it as a file or directory it processes: not through a symbolic link, and not itself a
        /// symbolic link, a mount point (a file bind-mounted into the tree included) or a special file, which
        /// the walk passed over.
        /// </summary>
        internal string? Covering(string path)
        {
            if (roots.Count == 0)
            {
                return null;
            }

            if (FileStatus.OfPath(path, followLinks: false) is not FileStatus self || !(self.IsRegular || self.IsDirectory))
            {
                return null;
            }

            var between = new List<FileStatus> { self }; // the path and the directories from its parent up to (not including) the walked root
            string? dir = System.IO.Path.GetDirectoryName(path);
            for (int level = 1; !string.IsNullOrEmpty(dir); level++)
            {
                if (FileStatus.OfPath(dir, followLinks: false) is not FileStatus st)
                {
                    return null;
                }

                if (st.IsSymbolicLink)
                {
                    // Another name for a walked root leads into it; any other link the walk did not follow.
                    return FileStatus.OfPath(dir, followLinks: true) is FileStatus target && roots.TryGetValue(Key(target), out var aliased)
                        ? Reached(aliased.Status, between, level) ? aliased.Path : null
                        : null;
                }

                if (roots.TryGetValue(Key(st), out var root))
                {
                    return Reached(root.Status, between, level) ? root.Path : null;
                }

                if (!filter.TakesDirectory(System.IO.Path.GetFileName(dir)))
                {
                    return null; // an excluded directory: nothing below it was walked by a root above it
                }

                between.Add(st);
                dir = System.IO.Path.GetDirectoryName(dir);
            }

            return null;
        }

        private bool Reached(in FileStatus root, List<FileStatus> between, int level)
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

            foreach (FileStatus d in between)
            {
                bool otherDevice = d.DevMajor != root.DevMajor || d.DevMinor != root.DevMinor;
                bool otherMount = d.MountId != 0 && root.MountId != 0 && d.MountId != root.MountId;
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
