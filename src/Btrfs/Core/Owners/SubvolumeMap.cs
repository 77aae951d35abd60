namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Runtime.InteropServices;
    using System.Text;
    using Btrfs.Interop;
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

        /// <summary>The subvolume's path from the top level ("/" for id 5), or null when it has no back reference (being deleted).</summary>
        internal string? PathOf(ulong id)
        {
            if (paths.TryGetValue(id, out string? known))
            {
                return known;
            }

            string? path;
            if (id == Libc.BTRFS_FS_TREE_OBJECTID)
            {
                path = "/";
            }
            else
            {
                path = null;
                foreach (BtrfsItem backref in BtrfsSearch.Search(anchor, Libc.BTRFS_ROOT_TREE_OBJECTID, id, id, Libc.BTRFS_ROOT_BACKREF_KEY, Libc.BTRFS_ROOT_BACKREF_KEY))
                {
                    // struct btrfs_root_ref: dirid, sequence, name_len, name; the key's offset is the parent subvolume.
                    ulong parent = backref.Offset;
                    ulong dir = backref.U64(0);
                    int nameLength = backref.U16(16);
                    string name = Encoding.UTF8.GetString(backref.Data, Libc.RootRefSize, nameLength);
                    if (PathOf(parent) is string parentPath)
                    {
                        path = parentPath.TrimEnd('/') + "/" + DirectoryInSubvolume(parent, dir) + name;
                    }

                    break;
                }
            }

            paths[id] = path;
            return path;
        }

        /// <summary>The root directory of the subvolume, opened under a mount that reaches it; null when none does.</summary>
        internal OpenFile? DirectoryOf(ulong id)
        {
            if (directories.TryGetValue(id, out OpenFile? known))
            {
                return known;
            }

            OpenFile? found = null;
            if (PathOf(id) is string path)
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

                    if (TryOpenSubvolumeRoot(candidate, id) is OpenFile dir)
                    {
                        found = dir;
                        break;
                    }
                }
            }

            directories[id] = found;
            return found;
        }

        /// <summary>The subvolume id of the tree an open file is in (INO_LOOKUP of objectid 256 in tree 0: no privilege needed).</summary>
        internal static unsafe ulong SubvolumeIdOf(OpenFile file)
        {
            Libc.BtrfsInoLookupArgs args = default;
            args.ObjectId = Libc.BTRFS_FIRST_FREE_OBJECTID;
            if (Libc.Ioctl(file.Handle, Libc.BTRFS_IOC_INO_LOOKUP, &args) < 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "BTRFS_IOC_INO_LOOKUP", file.Path, "Cannot find the subvolume of");
            }

            return args.TreeId;
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            foreach (OpenFile? d in directories.Values)
            {
                d?.Dispose();
            }

            directories.Clear();
        }

        private static OpenFile? TryOpenSubvolumeRoot(string path, ulong id)
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

            // The path must be that subvolume's root, not a directory of the same name or another mount on top.
            bool ok = dir.IsDirectory && dir.FileSystem.Kind == FileSystemKind.Btrfs && dir.Status.Inode == Libc.BTRFS_FIRST_FREE_OBJECTID;
            try
            {
                ok = ok && SubvolumeIdOf(dir) == id;
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

        /// <summary>INO_LOOKUP: the path of directory <paramref name="dir"/> inside subvolume <paramref name="tree"/>, with a trailing '/' ("" for its root).</summary>
        private unsafe string DirectoryInSubvolume(ulong tree, ulong dir)
        {
            Libc.BtrfsInoLookupArgs args = default;
            args.TreeId = tree;
            args.ObjectId = dir;
            if (Libc.Ioctl(anchor.Handle, Libc.BTRFS_IOC_INO_LOOKUP, &args) < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw FileOperationException.FromErrno(errno, "BTRFS_IOC_INO_LOOKUP", anchor.Path, "Cannot resolve a subvolume path on the filesystem of", errno is Errno.EPERM or Errno.EACCES ? BtrfsSearch.NeedsRoot("INO_LOOKUP") : null);
            }

            var name = new ReadOnlySpan<byte>(args.Name, Libc.BtrfsInoLookupArgs.NameMax);
            int end = name.IndexOf((byte)0);
            return Encoding.UTF8.GetString(end < 0 ? name : name[..end]);
        }
    }
}
