namespace Btrfs.Core
{
    using System;
    using System.Text;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// New-BtrfsSubvolume's and New-BtrfsSnapshot's Core: the new subvolume is created by the kernel
    /// in the destination's parent directory, opened once (never by following a link), and the name
    /// is never taken from another file (the kernel refuses an existing name, EEXIST).
    /// </summary>
    internal static class SubvolumeCreator
    {
        /// <summary>
        /// A new empty subvolume at <paramref name="path"/>; with <paramref name="noCow"/> its root directory
        /// gets NOCOW before anything is in it, so every file made there is NOCOW. Returns the new subvolume.
        /// </summary>
        internal static BtrfsSubvolumeInfo Create(string path, bool noCow)
        {
            (OpenFile parent, string name, string full) = OpenParent(path, "create the subvolume");
            using (parent)
            {
                int errno = BtrfsSubvolumes.TryCreate(parent.Handle, name);
                if (errno != 0)
                {
                    throw Failure(errno, "BTRFS_IOC_SUBVOL_CREATE_V2", full, "Cannot create the subvolume", "write and search permission on the directory it goes in");
                }

                return DescribeNew(parent, name, full, noCow);
            }
        }

        /// <summary>
        /// A snapshot of the subvolume whose root is <paramref name="source"/> at <paramref name="destination"/>
        /// (which must not exist; its parent must be on the same filesystem), read-only when asked. Returns the snapshot.
        /// </summary>
        /// <param name="source">The subvolume's root directory.</param>
        /// <param name="destination">The snapshot's path.</param>
        /// <param name="readOnly">Make the snapshot read-only.</param>
        /// <param name="expected">The subvolume the caller means (a piped object's Uuid); Guid.Empty: whatever <paramref name="source"/> leads to.</param>
        internal static BtrfsSubvolumeInfo Snapshot(string source, string destination, bool readOnly, Guid expected = default)
        {
            using OpenFile src = OpenFile.Open(source, OpenOptions.AllowDirectory);
            BtrfsOnly.Require(src, "snapshot", because: "only btrfs has snapshots");
            if (!src.IsDirectory || src.Status.Inode != BtrfsInspect.SubvolumeRootInode)
            {
                throw new FileOperationException(
                    FileErrorKind.NotASubvolume,
                    Errno.EINVAL,
                    "statx",
                    source,
                    $"Cannot snapshot '{source}': it is not the root of a subvolume, only a {(src.IsDirectory ? "directory" : "file")} in one. Snapshot the subvolume that holds it (Get-BtrfsSubvolume '{source}' shows which), or copy it with New-BtrfsReflink.");
            }

            if (expected != Guid.Empty && BtrfsSubvolumes.Info(src.Handle, source) is var info && info.Uuid != expected)
            {
                // A name renamed, replaced (by a link to another subvolume, too) or mounted over since the object was made.
                throw new FileOperationException(
                    FileErrorKind.SubvolumeReplaced,
                    0,
                    "BTRFS_IOC_GET_SUBVOL_INFO",
                    source,
                    $"Cannot snapshot '{source}': it now leads to subvolume {info.Id} ({info.Uuid}), not the subvolume {expected} the object names (renamed, replaced or mounted over since it was listed). Nothing was changed; list the subvolumes again.");
            }

            (OpenFile parent, string name, string full) = OpenParent(destination, "create the snapshot");
            using (parent)
            {
                int errno = BtrfsSubvolumes.TrySnapshot(src.Handle, parent.Handle, name, readOnly);
                if (errno == Errno.EXDEV)
                {
                    throw AcrossFileSystems(source, full);
                }

                if (errno != 0)
                {
                    throw Failure(errno, "BTRFS_IOC_SNAP_CREATE_V2", full, "Cannot create the snapshot", "ownership of the source subvolume (or root) and write permission on the directory the snapshot goes in");
                }

                return DescribeNew(parent, name, full, noCow: false);
            }
        }

        /// <summary>
        /// The new subvolume's object, as Get-BtrfsSubvolume writes it, from its root directory opened through
        /// the parent without following a link (and checked to be a subvolume's root); with <paramref name="noCow"/>
        /// the directory gets NOCOW first. A failure here says that the subvolume was created.
        /// </summary>
        private static BtrfsSubvolumeInfo DescribeNew(OpenFile parent, string name, string full, bool noCow)
        {
            try
            {
                using OpenFile created = OpenFile.Open(new FileLocation(parent.Handle, name, full), OpenOptions.AllowDirectory | OpenOptions.NoFollow);
                if (!created.IsDirectory || created.Status.Inode != BtrfsInspect.SubvolumeRootInode)
                {
                    throw new FileOperationException(FileErrorKind.NotASubvolume, 0, "statx", full, $"The subvolume '{full}' was created, but its name now leads to something else. Check what is there.");
                }

                if (noCow)
                {
                    InodeFlags flags = InodeAttributes.Get(created.Handle, full);
                    if ((InodeAttributes.Set(created.Handle, full, flags | InodeFlags.NoCow) & InodeFlags.NoCow) == 0)
                    {
                        throw new FileOperationException(FileErrorKind.NoCowNotApplied, 0, "FS_IOC_SETFLAGS", full, $"The subvolume '{full}' was created, but its directory did not take NOCOW. Set it with Set-NoCow before putting files in it.");
                    }
                }

                return SubvolumeLister.List(created, SubvolumeScope.Self)[0];
            }
            catch (FileOperationException ex) when (!ex.Message.Contains("was created", StringComparison.Ordinal))
            {
                throw new FileOperationException(ex.Kind, ex.Errno, ex.Operation, full, $"The subvolume '{full}' was created, but then: {ex.Message}");
            }
        }

        /// <summary>
        /// The directory the new subvolume goes in, opened (symbolic links in it followed, as mkdir does),
        /// on btrfs, and the new name, checked to be free and valid.
        /// </summary>
        private static (OpenFile Parent, string Name, string Full) OpenParent(string path, string what)
        {
            if (path.Contains('\0', StringComparison.Ordinal))
            {
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "path", path.Replace("\0", "\\0", StringComparison.Ordinal), $"Cannot {what}: a path cannot contain a NUL character.");
            }

            string full = System.IO.Path.GetFullPath(path).TrimEnd('/');
            string name = System.IO.Path.GetFileName(full);
            string parentPath = System.IO.Path.GetDirectoryName(full) ?? "/";
            if (name.Length == 0 || name is "." or "..")
            {
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "path", path, $"Cannot {what} '{path}': give the path of the new subvolume, ending in its name.");
            }

            if (Encoding.UTF8.GetByteCount(name) > BtrfsSubvolumes.NameMax)
            {
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.ENAMETOOLONG, "path", full, $"Cannot {what} '{full}': a subvolume name is at most {BtrfsSubvolumes.NameMax} bytes. Choose a shorter name.");
            }

            OpenFile parent;
            try
            {
                parent = OpenFile.Open(parentPath, OpenOptions.AllowDirectory);
            }
            catch (FileOperationException ex) when (ex.Kind == FileErrorKind.NotFound)
            {
                throw new FileOperationException(FileErrorKind.NotFound, ex.Errno, ex.Operation, full, $"Cannot {what} '{full}': its directory '{parentPath}' does not exist (or a part of its path is not a directory). Create the directory first (New-Item -ItemType Directory), or give another path. Nothing was created.", ex);
            }
            catch (FileOperationException ex)
            {
                throw DirectoryHandle.CannotCreateIn(ex, parentPath, full, $"{what} '{full}'");
            }

            try
            {
                if (!parent.IsDirectory)
                {
                    throw new FileOperationException(FileErrorKind.NotFound, Errno.ENOTDIR, "statx", full, $"Cannot {what} '{full}': '{parentPath}' is not a directory.");
                }

                // A name taken first: a mount point given as the destination is taken, whatever its parent is on.
                if (FileStatus.OfAt(parent.Handle, name) is not null)
                {
                    throw new FileOperationException(FileErrorKind.AlreadyExists, Errno.EEXIST, "statx", full, $"Cannot {what} '{full}': the name is taken. Choose another name, or remove what is there first; nothing was changed.");
                }

                BtrfsOnly.Require(parent, what + " in", because: "only btrfs has subvolumes and snapshots");

                return (parent, name, full);
            }
            catch
            {
                parent.Dispose();
                throw;
            }
        }

        private static FileOperationException AcrossFileSystems(string source, string destination) => new(
            FileErrorKind.SnapshotAcrossFileSystems,
            Errno.EXDEV,
            "BTRFS_IOC_SNAP_CREATE_V2",
            destination,
            $"Cannot snapshot '{source}' to '{destination}': a snapshot lives on the filesystem of its source, and '{destination}' is on another. Choose a destination on the same btrfs filesystem, or copy with New-BtrfsReflink. Nothing was changed.");

        private static FileOperationException Failure(int errno, string call, string path, string what, string needs)
        {
            if (errno is Errno.EPERM or Errno.EACCES)
            {
                return new FileOperationException(FileErrorKind.AccessDenied, errno, call, path, $"{what} '{path}': permission denied ({Errno.Name(errno)}). This needs {needs}. Nothing was changed.");
            }

            if (errno == Errno.EEXIST)
            {
                return new FileOperationException(FileErrorKind.AlreadyExists, errno, call, path, $"{what} '{path}': the name was taken meanwhile. Nothing was changed.");
            }

            return FileOperationException.FromErrno(errno, call, path, what, "Nothing was changed.");
        }
    }
}
