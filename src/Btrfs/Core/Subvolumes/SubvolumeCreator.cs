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
    internal sealed class SubvolumeCreator : IDisposable
    {
        private readonly OpenFile parent;
        private readonly string name;
        private readonly OpenFile? source; // a snapshot's
        private readonly string? sourcePath;

        private SubvolumeCreator(OpenFile parent, string name, string full, OpenFile? source, string? sourcePath)
        {
            this.parent = parent;
            this.name = name;
            Full = full;
            this.source = source;
            this.sourcePath = sourcePath;
        }

        /// <summary>The new subvolume's full path.</summary>
        internal string Full { get; }

        /// <summary>
        /// Checks that a new empty subvolume can be made at <paramref name="path"/> (the name free, its directory on
        /// btrfs, writable, and not in a read-only snapshot or mount): what <see cref="Create"/> then makes, so a
        /// refusal comes before any prompt and -WhatIf. Nothing is changed.
        /// </summary>
        internal static SubvolumeCreator PlanCreate(string path)
        {
            (OpenFile parent, string name, string full) = OpenParent(path, "create the subvolume");
            return new SubvolumeCreator(parent, name, full, null, null);
        }

        /// <summary>
        /// Checks that a snapshot of the subvolume whose root is <paramref name="source"/> can be made at
        /// <paramref name="destination"/> (which must not exist; its directory must be on the same filesystem, writable,
        /// not in a read-only snapshot), by this user (the kernel allows snapshots of one's own subvolumes only, or
        /// root), and, with <paramref name="expected"/>, that the source is the subvolume named. Nothing is changed.
        /// </summary>
        internal static SubvolumeCreator PlanSnapshot(string source, string destination, NamedSubvolume expected = default)
        {
            OpenFile src = OpenFile.Open(source, OpenOptions.AllowDirectory | OpenOptions.TrustedLinksOnly);
            try
            {
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

                if (expected.Names)
                {
                    // A name renamed, replaced (by a link to another subvolume, too) or mounted over since the object was made.
                    BtrfsRootRecord info = BtrfsSubvolumes.Info(src.Handle, source);
                    expected.Check(info.Id, info.Uuid, "snapshot", source, "Nothing was changed");
                }

                // The kernel: "subvolume creation is not restricted, but snapshots are limited to own subvolumes only".
                uint me = Metadata.FileSystemUserId;
                if (src.Status.Uid != me && !Processes.HasFowner())
                {
                    throw new FileOperationException(
                        FileErrorKind.AccessDenied,
                        Errno.EPERM,
                        "statx",
                        source,
                        $"Cannot snapshot '{source}': its subvolume belongs to user {src.Status.Uid}, and the kernel lets a user other than root snapshot only their own subvolumes. Run as root (or as its owner). Nothing was changed.");
                }

                // The kernel does not snapshot a subvolume with an active swapfile (ETXTBSY); every file in the
                // subvolume (and no file of another) has its root's device number.
                if (SwapTable.Read().AnyOnDevice(src.Status.DevMajor, src.Status.DevMinor))
                {
                    throw SwapfileInSource(source);
                }

                (OpenFile parent, string name, string full) = OpenParent(destination, "create the snapshot");
                if (BtrfsSearch.FileSystemId(parent) != BtrfsSearch.FileSystemId(src))
                {
                    parent.Dispose();
                    throw AcrossFileSystems(source, full);
                }

                return new SubvolumeCreator(parent, name, full, src, source);
            }
            catch
            {
                src.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Makes the subvolume planned by <see cref="PlanCreate"/>; with <paramref name="noCow"/> its root directory
        /// gets NOCOW before anything is in it, so every file made there is NOCOW. Returns the new subvolume.
        /// </summary>
        internal BtrfsSubvolumeInfo Create(bool noCow)
        {
            int errno = BtrfsSubvolumes.TryCreate(parent.Handle, name);
            if (errno != 0)
            {
                throw Failure(errno, "BTRFS_IOC_SUBVOL_CREATE_V2", Full, "Cannot create the subvolume", "write and search permission on the directory it goes in");
            }

            return DescribeNew(parent, name, Full, noCow);
        }

        /// <summary>Makes the snapshot planned by <see cref="PlanSnapshot"/>, read-only when asked. Returns the snapshot.</summary>
        internal BtrfsSubvolumeInfo Snapshot(bool readOnly)
        {
            OpenFile src = source ?? throw new InvalidOperationException("Not a planned snapshot.");
            int errno = BtrfsSubvolumes.TrySnapshot(src.Handle, parent.Handle, name, readOnly);
            if (errno == Errno.EXDEV)
            {
                throw AcrossFileSystems(sourcePath ?? src.Path, Full);
            }

            if (errno == Errno.ETXTBSY)
            {
                throw SwapfileInSource(sourcePath ?? src.Path);
            }

            if (errno != 0)
            {
                throw Failure(errno, "BTRFS_IOC_SNAP_CREATE_V2", Full, "Cannot create the snapshot", "ownership of the source subvolume (or root) and write permission on the directory the snapshot goes in");
            }

            return DescribeNew(parent, name, Full, noCow: false, src);
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            source?.Dispose();
            parent.Dispose();
        }

        /// <summary>
        /// The new subvolume's object, as Get-BtrfsSubvolume writes it, from its root directory opened through
        /// the parent without following a link (and checked to be a subvolume's root); with <paramref name="noCow"/>
        /// the directory gets NOCOW first. A failure here says that the subvolume was created.
        /// </summary>
        private static BtrfsSubvolumeInfo DescribeNew(OpenFile parent, string name, string full, bool noCow, OpenFile? source = null)
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

                return source is null ? SubvolumeLister.List(created, SubvolumeScope.Self)[0] : SubvolumeLister.SnapshotOf(created, source);
            }
            catch (FileOperationException ex) when (!ex.Message.Contains("was created", StringComparison.Ordinal))
            {
                throw new FileOperationException(ex.Kind, ex.Errno, ex.Operation, full, $"The subvolume '{full}' was created, but then: {ex.Message}");
            }
        }

        /// <summary>
        /// The directory the new subvolume goes in, opened (symbolic links in it followed as mkdir does, but only where root or this user made them),
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
                parent = OpenFile.Open(parentPath, OpenOptions.AllowDirectory | OpenOptions.TrustedLinksOnly);
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
                if (parent.IsReadOnlyMount)
                {
                    throw new FileOperationException(FileErrorKind.ReadOnlyFileSystem, Errno.EROFS, "statfs", full, $"Cannot {what} '{full}': the filesystem of '{parentPath}' is mounted read-only. Remount it read-write (or choose a directory on a writable mount). Nothing was changed.");
                }

                if (BtrfsSubvolume.Of(parent) is { IsReadOnly: true } readOnly)
                {
                    throw new FileOperationException(FileErrorKind.ReadOnlySnapshot, Errno.EROFS, "BTRFS_IOC_GET_SUBVOL_INFO", full, $"Cannot {what} '{full}': '{parentPath}' is in the read-only subvolume '{readOnly.Name}' (id {readOnly.Id}), where nothing can be added. Choose a directory in a writable subvolume, or make that one writable first (btrfs property set <its path> ro false). Nothing was changed.");
                }

                if ((InodeAttributes.Get(parent.Handle, parentPath) & InodeFlags.Immutable) != 0)
                {
                    throw new FileOperationException(FileErrorKind.Immutable, Errno.EPERM, "FS_IOC_GETFLAGS", full, $"Cannot {what} '{full}': '{parentPath}' is immutable (chattr +i), and the kernel adds nothing to an immutable directory, not even for root. Choose another directory, or make it changeable first (chattr -i). Nothing was changed.");
                }

                if (!Files.MayWriteAndSearch(parent.Handle, "."))
                {
                    throw new FileOperationException(FileErrorKind.AccessDenied, Errno.EACCES, "faccessat", full, $"Cannot {what} '{full}': this user may not write in '{parentPath}' (the kernel asks write and search permission on the directory a subvolume goes in). Choose a directory of yours, or run as root. Nothing was changed.");
                }

                return (parent, name, full);
            }
            catch
            {
                parent.Dispose();
                throw;
            }
        }

        private static FileOperationException SwapfileInSource(string source) => new(
            FileErrorKind.ActiveSwapfile,
            Errno.ETXTBSY,
            "/proc/swaps",
            source,
            $"Cannot snapshot '{source}': an active swapfile is in this subvolume, and the kernel does not snapshot a subvolume with an active swapfile (ETXTBSY). Switch it off first (swapoff), or keep swapfiles in a subvolume of their own that is not snapshotted. Nothing was changed.");

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
