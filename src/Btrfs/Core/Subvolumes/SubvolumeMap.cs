namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// Subvolume ids to paths and open directories, for one btrfs filesystem: the path from the top
    /// level comes from the ROOT_BACKREF items of the root tree (parent id, directory, name) and
    /// INO_LOOKUP (the directory's path in the parent); the directory is the subvolume's root under a
    /// mount of the filesystem that reaches it. Both are cached; directories are closed on Dispose.
    /// </summary>
    internal sealed class SubvolumeMap : IDisposable
    {
        private readonly OpenFile anchor;
        private readonly List<MountEntry> mounts;
        private readonly Dictionary<ulong, string?> paths = new();
        private readonly Dictionary<ulong, OpenFile?> directories = new();
        private readonly Dictionary<ulong, List<(OpenFile Dir, string Prefix)>> inner = new();
        private readonly HashSet<ulong> notUtf8 = new();
        private Guid? fileSystem;

        /// <param name="anchor">Any open file or directory of the filesystem (the ioctls go through it).</param>
        /// <param name="mountTable">The mounts; those of the anchor's filesystem are used, the anchor's own mount first.</param>
        internal SubvolumeMap(OpenFile anchor, MountTable mountTable)
        {
            this.anchor = anchor;
            mounts = new List<MountEntry>();
            if (mountTable.For(anchor) is MountEntry own)
            {
                mounts.Add(own);
                foreach (MountEntry m in mountTable.Entries)
                {
                    if (m != own && m.Major == own.Major && m.Minor == own.Minor && m.FileSystemType == "btrfs")
                    {
                        mounts.Add(m);
                    }
                }
            }
        }

        /// <summary>
        /// The subvolume's path from the top level ("/" for id 5), or null when it has no back reference (being deleted).
        /// Where its name, or a directory's on the way, is not valid UTF-8 (<see cref="NameNotUtf8"/>), it holds U+FFFD for
        /// each byte that is not: to be shown, never to be opened as a name (every directory found by it is checked to be
        /// the subvolume's own).
        /// </summary>
        internal string? PathOf(ulong id)
        {
            if (paths.TryGetValue(id, out string? known))
            {
                return known;
            }

            string? path = null;
            if (id == BtrfsInspect.TopLevelId)
            {
                path = "/";
            }
            else if (BtrfsInspect.BackrefOf(anchor, id) is RootBackref backref && PathOf(backref.Parent) is string parentPath)
            {
                path = parentPath.TrimEnd('/') + "/" + DirectoryInSubvolume(backref.Parent, backref.Directory, out bool exact) + backref.Name;
                if (!exact || !backref.NameIsUtf8 || notUtf8.Contains(backref.Parent))
                {
                    notUtf8.Add(id);
                }
            }

            paths[id] = path;
            return path;
        }

        /// <summary>The subvolume has no path here because its name, or a directory's on the way, is not valid UTF-8 (asked after <see cref="PathOf"/>).</summary>
        internal bool NameNotUtf8(ulong id) => notUtf8.Contains(id);

        /// <summary>The root directory of the subvolume, opened under a mount that reaches it; null when none does.</summary>
        internal OpenFile? DirectoryOf(ulong id)
        {
            if (directories.TryGetValue(id, out OpenFile? known))
            {
                return known;
            }

            OpenFile? found = null;
            if (PathOf(id) is string path && !NameNotUtf8(id))
            {
                foreach (MountEntry m in mounts)
                {
                    string root = m.Root.TrimEnd('/');
                    if (path != (root.Length == 0 ? "/" : root) && !path.StartsWith(root + "/", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    string candidate = m.MountPoint.TrimEnd('/') + path[root.Length..].TrimEnd('/');
                    if (candidate.Length == 0)
                    {
                        candidate = "/";
                    }

                    if (TryOpenSubvolumeRoot(candidate, id, fileSystem ??= BtrfsSearch.FileSystemId(anchor)) is OpenFile dir)
                    {
                        found = dir;
                        break;
                    }
                }
            }

            directories[id] = found;
            return found;
        }

        /// <summary>
        /// Where no mount reaches the subvolume's root: the directories inside it that are the roots of mounts (bind
        /// mounts of subdirectories, as container volumes), opened, each with its path in the subvolume ("sub/dir/"),
        /// the longest first: a name below one of them is given through it, others not. Empty when no mount reaches
        /// into the subvolume.
        /// </summary>
        internal IReadOnlyList<(OpenFile Dir, string Prefix)> InnerMountsOf(ulong id)
        {
            if (inner.TryGetValue(id, out var known))
            {
                return known;
            }

            var found = new List<(OpenFile Dir, string Prefix)>();
            if (PathOf(id) is string path && !NameNotUtf8(id))
            {
                string subvolume = path.TrimEnd('/');
                foreach (MountEntry m in mounts)
                {
                    string root = m.Root.TrimEnd('/');
                    if (!root.StartsWith(subvolume + "/", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    string prefix = root[(subvolume.Length + 1)..] + "/";
                    if (found.Exists(f => f.Prefix == prefix))
                    {
                        continue; // that directory is reached already
                    }

                    if (TryOpenDirectoryIn(m.MountPoint, id, prefix, fileSystem ??= BtrfsSearch.FileSystemId(anchor)) is OpenFile dir)
                    {
                        found.Add((dir, prefix));
                    }
                }
            }

            found.Sort((a, b) => b.Prefix.Length.CompareTo(a.Prefix.Length));
            inner[id] = found;
            return found;
        }

        /// <summary>The directory at <paramref name="path"/> when it is <paramref name="prefix"/> of subvolume <paramref name="id"/> of <paramref name="fileSystem"/> (no other mount on top), else null.</summary>
        private OpenFile? TryOpenDirectoryIn(string path, ulong id, string prefix, Guid? fileSystem) =>
            TryOpenIn(path, id, fileSystem, dir => DirectoryInSubvolume(id, dir.Status.Inode, out bool exact) == prefix && exact);

        /// <summary>The subvolume id of the tree an open file is in (INO_LOOKUP of objectid 256 in tree 0: no privilege needed).</summary>
        internal static ulong SubvolumeIdOf(OpenFile file)
        {
            int errno = BtrfsInspect.TryLookup(file.Handle, 0, BtrfsInspect.SubvolumeRootInode, out ulong treeId, out _);
            return errno == 0 ? treeId : throw FileOperationException.FromErrno(errno, "BTRFS_IOC_INO_LOOKUP", file.Path, "Cannot find the subvolume of");
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            foreach (OpenFile? d in directories.Values)
            {
                d?.Dispose();
            }

            directories.Clear();
            foreach (List<(OpenFile Dir, string Prefix)> list in inner.Values)
            {
                list.ForEach(d => d.Dir.Dispose());
            }

            inner.Clear();
        }

        /// <summary>
        /// The directory at <paramref name="path"/> when it is the root of subvolume <paramref name="id"/> of the
        /// filesystem <paramref name="fileSystem"/>: not a directory of the same name, nor another mount on top
        /// (a subvolume of another btrfs with the same id, mounted over a directory on the way), else null.
        /// </summary>
        private static OpenFile? TryOpenSubvolumeRoot(string path, ulong id, Guid? fileSystem) =>
            TryOpenIn(path, id, fileSystem, dir => dir.Status.Inode == BtrfsInspect.SubvolumeRootInode);

        /// <summary>
        /// The directory at <paramref name="path"/> when it is a directory of subvolume <paramref name="id"/> of the
        /// filesystem <paramref name="fileSystem"/> that <paramref name="isIt"/> accepts (a failed look-up refuses it):
        /// not one of the same name elsewhere, nor another mount on top, else null.
        /// </summary>
        private static OpenFile? TryOpenIn(string path, ulong id, Guid? fileSystem, Func<OpenFile, bool> isIt)
        {
            OpenFile dir;
            try
            {
                dir = OpenFile.Open(path, OpenOptions.AllowDirectory | OpenOptions.NoFollow);
            }
            catch (FileOperationException)
            {
                return null;
            }

            bool ok = dir.IsDirectory && dir.FileSystem.Kind == FileSystemKind.Btrfs;
            try
            {
                ok = ok && isIt(dir) && SubvolumeIdOf(dir) == id && fileSystem is Guid fs && BtrfsSearch.FileSystemId(dir) == fs;
            }
            catch (FileOperationException)
            {
                ok = false;
            }

            if (!ok)
            {
                dir.Dispose();
                return null;
            }

            return dir;
        }

        /// <summary>
        /// INO_LOOKUP: the path of directory <paramref name="dir"/> inside subvolume <paramref name="tree"/>, with a trailing
        /// '/' ("" for its root); not <paramref name="exact"/> where it is not valid UTF-8 (U+FFFD for each byte that is not).
        /// </summary>
        private string DirectoryInSubvolume(ulong tree, ulong dir, out bool exact)
        {
            int errno = BtrfsInspect.TryLookup(anchor.Handle, tree, dir, out _, out string path);
            exact = errno == 0;
            return errno is 0 or Errno.EILSEQ ? path
                : throw FileOperationException.FromErrno(errno, "BTRFS_IOC_INO_LOOKUP", anchor.Path, "Cannot resolve a subvolume path on the filesystem of", errno is Errno.EPERM or Errno.EACCES ? BtrfsSearch.NeedsRoot("INO_LOOKUP") : null);
        }
    }
}
