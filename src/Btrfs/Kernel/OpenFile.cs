namespace Btrfs.Kernel
{
    using System;
    using System.Runtime.InteropServices;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>How <see cref="OpenFile.Open"/> treats the path.</summary>
    [Flags]
    internal enum OpenOptions
    {
        /// <summary>A regular file; symbolic links are followed.</summary>
        None = 0,

        /// <summary>A directory is accepted too (for reading and changing its attributes).</summary>
        AllowDirectory = 1,

        /// <summary>A symbolic link as the last component is refused (O_NOFOLLOW): every write path uses this.</summary>
        NoFollow = 2,

        /// <summary>
        /// The caller has just classified the path as a regular file without opening it (the tree
        /// walker, from the directory entry's d_type), so the stat before opening is skipped; the
        /// descriptor is still checked after opening (O_NONBLOCK, O_NOCTTY: nothing can block).
        /// </summary>
        KnownRegular = 4,

        /// <summary>
        /// Symbolic links on the way (and the last name's, without <see cref="NoFollow"/>) are followed only where they
        /// belong to root or to this user: another user's is refused (PathIsSymbolicLink), since that user chooses
        /// where it leads. What changes files and subvolumes uses this (with <see cref="NoFollow"/> it goes without saying).
        /// </summary>
        TrustedLinksOnly = 8,
    }

    /// <summary>The statfs answers for devices already seen, for one batch of files (thread-safe).</summary>
    internal sealed class FileSystemCache
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<(uint, uint), (FileSystemType, long)> byDevice = new();

        internal (FileSystemType Type, long MountFlags)? Find(in FileStatus st) =>
            byDevice.TryGetValue((st.DevMajor, st.DevMinor), out var known) ? known : null;

        internal void Add(in FileStatus st, FileSystemType type, long mountFlags) => byDevice.TryAdd((st.DevMajor, st.DevMinor), (type, mountFlags));
    }

    /// <summary>
    /// An open regular file (or, when asked, a directory). Opening never blocks and never opens
    /// anything else: the path is examined first (FIFOs, sockets, devices and, unless allowed,
    /// directories are refused without being opened), then opened O_NONBLOCK and examined again
    /// through the descriptor, so a path swapped between the two steps is still caught. Symbolic
    /// links are followed, as cat(1) does, unless <see cref="OpenOptions.NoFollow"/> is given.
    /// </summary>
    internal sealed class OpenFile : IDisposable
    {
        private readonly SafeFileDescriptor handle;
        private readonly bool ownsHandle = true;
        private SafeFileDescriptor? directory;

        private OpenFile(SafeFileDescriptor handle, string path, FileStatus status, FileSystemType fileSystem, long mountFlags, bool ownsHandle = true)
        {
            this.handle = handle;
            this.ownsHandle = ownsHandle;
            Path = path;
            Status = status;
            FileSystem = fileSystem;
            IsReadOnlyMount = (mountFlags & Libc.ST_RDONLY) != 0;
        }

        /// <summary>The path the file was opened by.</summary>
        public string Path { get; }

        /// <summary>The file size in bytes when it was opened.</summary>
        public long Size => Status.Size;

        /// <summary>The filesystem the file lives on.</summary>
        public FileSystemType FileSystem { get; }

        /// <summary>The path is a directory (only with <see cref="OpenOptions.AllowDirectory"/>).</summary>
        public bool IsDirectory => Status.IsDirectory;

        /// <summary>The filesystem is mounted read-only (statfs ST_RDONLY).</summary>
        public bool IsReadOnlyMount { get; }

        internal SafeFileDescriptor Handle => handle;

        /// <summary>
        /// The directory the file was opened in, when it was opened relative to one (every write path
        /// is): the temporary file, the exchange of names and every check go through it, never through
        /// the path again. Null for a file opened by path only.
        /// </summary>
        internal SafeFileDescriptor? Directory => directory;

        /// <summary>The file's name in <see cref="Directory"/>.</summary>
        internal string Name { get; private set; } = string.Empty;

        /// <summary>The inode's status when it was opened.</summary>
        internal FileStatus Status { get; }

        /// <summary>Opens <paramref name="path"/> read-only. Throws <see cref="FileOperationException"/>.</summary>
        internal static OpenFile OpenRead(string path) => Open(path, OpenOptions.None);

        /// <summary>
        /// Opens <paramref name="path"/> read-only as <paramref name="options"/> say. Throws
        /// <see cref="FileOperationException"/>. With a <paramref name="fileSystems"/> cache, files on
        /// a device already seen skip the statfs (many files of one tree).
        /// </summary>
        internal static OpenFile Open(string path, OpenOptions options, FileSystemCache? fileSystems = null)
        {
            ArgumentException.ThrowIfNullOrEmpty(path);
            const string what = "Cannot open";
            bool noFollow = (options & OpenOptions.NoFollow) != 0;
            bool allowDirectory = (options & OpenOptions.AllowDirectory) != 0;

            // Write paths: the directory first (by path: the user named it), the file relative to it.
            string trimmed = path.Length > 1 ? path.TrimEnd('/') : path;
            string name = System.IO.Path.GetFileName(trimmed);
            if (noFollow && name.Length > 0 && name is not ("." or ".."))
            {
                string dirPath = System.IO.Path.GetDirectoryName(trimmed) is { Length: > 0 } d ? d : ".";
                SafeFileDescriptor dir;
                try
                {
                    // Only named where this user may search it but not read it; links on the way followed only where
                    // root or this user made them (a hostile test: another user's link in a shared directory led a
                    // conversion to a file of root's that user chose).
                    dir = DirectoryHandle.OpenFollowingTrustedLinks(dirPath, Metadata.FileSystemUserId, (at, why) => ThroughAnotherUsersLink(path, at, why), orName: true);
                }
                catch (FileOperationException ex) when (ex.Kind is not (FileErrorKind.IsSymbolicLink or FileErrorKind.NameNotUtf8))
                {
                    // The path given is what is missing (or not there: a part of it is a file), as every read path says.
                    throw FileOperationException.FromErrno(ex.Errno, "open", path, what);
                }

                return Open(new FileLocation(dir, name, path), options, fileSystems, ownDirectory: true);
            }

            if ((options & OpenOptions.TrustedLinksOnly) != 0)
            {
                (SafeFileDescriptor, string) found;
                try
                {
                    found = DirectoryHandle.ResolveFollowingTrustedLinks(path, Metadata.FileSystemUserId, (at, why) => ThroughAnotherUsersLink(path, at, why));
                }
                catch (FileOperationException ex) when (ex.Kind is not (FileErrorKind.IsSymbolicLink or FileErrorKind.NameNotUtf8))
                {
                    throw FileOperationException.FromErrno(ex.Errno, "open", path, what);
                }

                return Open(new FileLocation(found.Item1, found.Item2, path), options & ~OpenOptions.TrustedLinksOnly, fileSystems, ownDirectory: true);
            }

            if ((options & OpenOptions.KnownRegular) == 0)
            {
                ThrowUnlessStatAccepts(path, noFollow, allowDirectory);
            }

            int flags = Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_CLOEXEC | Libc.O_NOCTTY | (noFollow ? Libc.O_NOFOLLOW : 0);
            SafeFileDescriptor fd = Libc.Open(path, flags, 0);
            if (fd.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                fd.Dispose();
                if (errno == Libc.ELOOP && noFollow && IsSymbolicLink(path))
                {
                    throw SymbolicLinkRefused(path);
                }

                throw FileOperationException.FromErrno(errno, "open", path, what);
            }

            return FromDescriptor(fd, path, allowDirectory, fileSystems);
        }

        /// <summary>
        /// Opens again, without following links, a file listed before (by a walk or a search): where its name leads
        /// nowhere now, or to a link or something other than a file, the error says it changed since it was listed and
        /// <paramref name="then"/> (never "check the path", which would send the user looking for a mistake of theirs).
        /// </summary>
        internal static OpenFile OpenListed(string path, string then)
        {
            try
            {
                return Open(path, OpenOptions.NoFollow);
            }
            catch (FileOperationException ex) when (FileOperationException.SinceListed(ex, path, then) is var since && since != ex)
            {
                throw since;
            }
        }

        /// <summary>
        /// Opens the name <paramref name="location"/> gives relative to its open directory, never
        /// following a symbolic link (O_NOFOLLOW). FIFOs, devices and sockets are refused without being
        /// opened (unless <see cref="OpenOptions.KnownRegular"/>), and the descriptor is checked again.
        /// With <see cref="OpenOptions.NoFollow"/> (a write path) the file keeps the directory for every
        /// later step (<see cref="Directory"/>): the location's descriptor itself when
        /// <paramref name="ownDirectory"/>, else a duplicate of it.
        /// </summary>
        internal static OpenFile Open(FileLocation location, OpenOptions options, FileSystemCache? fileSystems = null, bool ownDirectory = false)
        {
            // The directory given to keep is closed on every way out but success (a refused link, a missing
            // name, a FIFO, a failed duplicate): left to the finalizer, a refused open in a long session held a
            // subvolume's directory open, which keeps a deleted subvolume from the cleaner.
            OpenFile? file = null;
            bool done = false;
            try
            {
                file = OpenAt(location, options, fileSystems);
                if (ownDirectory)
                {
                    file.directory = location.Directory;
                }
                else if ((options & OpenOptions.NoFollow) != 0)
                {
                    file.directory = DirectoryHandle.Duplicate(location.Directory, location.Path);
                }

                done = true;
                return file;
            }
            finally
            {
                if (!done)
                {
                    file?.Dispose();
                    if (ownDirectory)
                    {
                        location.Directory.Dispose();
                    }
                }
            }
        }

        private static OpenFile OpenAt(FileLocation location, OpenOptions options, FileSystemCache? fileSystems)
        {
            const string what = "Cannot open";
            string path = location.Path;
            bool allowDirectory = (options & OpenOptions.AllowDirectory) != 0;
            if ((options & OpenOptions.KnownRegular) == 0)
            {
                if (FileStatus.OfAt(location.Directory, location.Name) is not FileStatus pre)
                {
                    throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "stat", path, what);
                }

                ThrowUnlessAccepted(pre.Mode, path, allowDirectory);
            }

            int flags = Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_CLOEXEC | Libc.O_NOCTTY | Libc.O_NOFOLLOW;
            SafeFileDescriptor fd = Libc.OpenAt(location.Directory, location.Name, flags, 0);
            if (fd.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                fd.Dispose();
                if (errno == Libc.ELOOP)
                {
                    throw SymbolicLinkRefused(path);
                }

                throw FileOperationException.FromErrno(errno, "openat", path, what);
            }

            OpenFile file = FromDescriptor(fd, path, allowDirectory, fileSystems);
            file.Name = location.Name;
            return file;
        }

        /// <summary>
        /// A directory the tree walker has open (<see cref="WalkEntry.Handle"/>), as a OpenFile of
        /// its own (a duplicate descriptor): its attributes are read and changed through the very
        /// descriptor whose entries the walk lists.
        /// </summary>
        internal static OpenFile FromDirectory(SafeFileDescriptor walkerHandle, string path) =>
            FromDescriptor(DirectoryHandle.Duplicate(walkerHandle, path), path, allowDirectory: true, null);

        /// <summary>fstat and fstatfs of a freshly opened descriptor, which the result then owns (closed here on failure).</summary>
        private static OpenFile FromDescriptor(SafeFileDescriptor fd, string path, bool allowDirectory, FileSystemCache? fileSystems)
        {
            const string what = "Cannot open";
            try
            {
                FileStatus status = FileStatus.Of(fd) ?? throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fstat", path, what);
                ThrowUnlessAccepted(status.Mode, path, allowDirectory);

                if (fileSystems?.Find(status) is (FileSystemType known, long knownFlags))
                {
                    return new OpenFile(fd, path, status, known, knownFlags);
                }

                if (Libc.FStatFs(fd, out Libc.StatFs sfs) != 0)
                {
                    throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fstatfs", path, what);
                }

                FileSystemType type = FileSystemType.FromMagic(sfs.Type);
                fileSystems?.Add(status, type, sfs.MountFlags);
                return new OpenFile(fd, path, status, type, sfs.MountFlags);
            }
            catch
            {
                fd.Dispose();
                throw;
            }
        }

        /// <summary>Closes the descriptor (unless it was only borrowed) and lets go of its directory.</summary>
        public void Dispose()
        {
            if (ownsHandle)
            {
                handle.Dispose();
            }

            directory?.Dispose();
        }

        /// <summary>
        /// The same file again, open for reading and writing through its directory (O_NOFOLLOW), without
        /// updating its access time where that is allowed (O_NOATIME: the owner or CAP_FOWNER only).
        /// Null when the name now holds another inode; throws <paramref name="what"/> when it cannot be opened.
        /// </summary>
        internal OpenFile? ReopenForWriting(string what, string advice)
        {
            SafeFileDescriptor dir = directory ?? throw new InvalidOperationException("the file must be opened relative to its directory");
            int flags = Libc.O_RDWR | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NOCTTY | Libc.O_NONBLOCK;
            SafeFileDescriptor fd = Libc.OpenAt(dir, Name, flags | Libc.O_NOATIME, 0);
            if (fd.IsInvalid && Errno.Last == Errno.EPERM)
            {
                fd.Dispose();
                fd = Libc.OpenAt(dir, Name, flags, 0);
            }

            fd = Errno.Check(fd, "open(O_RDWR)", Path, what, advice);
            if (FileStatus.Of(fd) is not FileStatus now || !now.SameInode(Status))
            {
                fd.Dispose();
                return null;
            }

            return new OpenFile(fd, Path, now, FileSystem, IsReadOnlyMount ? Libc.ST_RDONLY : 0) { Name = Name };
        }

        /// <summary>Writes the file's data and metadata to disk (fsync).</summary>
        internal void Flush(string what = "Cannot flush the data of") => Files.Sync(handle, Path, what);

        /// <summary>The inode's status now (fstat).</summary>
        internal FileStatus Restat() =>
            FileStatus.Of(handle) ?? throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fstat", Path, "Cannot examine");

        /// <summary>Bytes an unprivileged writer may still use on this file's filesystem (statfs f_bavail).</summary>
        internal long AvailableBytes() => Files.AvailableBytes(handle, Path);

        /// <summary>As <see cref="AvailableBytes()"/>, read again after a commit where less than <paramref name="needed"/> is free (<see cref="Files.AvailableBytes(SafeFileDescriptor, string, long)"/>).</summary>
        internal long AvailableBytes(long needed) => Files.AvailableBytes(handle, Path, needed);

        /// <summary>Describes a file type for messages ("a FIFO (named pipe)").</summary>
        internal static string DescribeType(ushort mode) => (mode & Libc.S_IFMT) switch
        {
            Libc.S_IFDIR => "a directory",
            Libc.S_IFIFO => "a FIFO (named pipe)",
            Libc.S_IFCHR => "a character device",
            Libc.S_IFBLK => "a block device",
            Libc.S_IFSOCK => "a socket",
            Libc.S_IFLNK => "a symbolic link",
            Libc.S_IFREG => "a regular file",
            _ => "not a regular file",
        };

        /// <summary>The refusal of <paramref name="path"/>, whose way passes <paramref name="at"/>, another user's symbolic link.</summary>
        internal static FileOperationException ThroughAnotherUsersLink(string path, string at, string why) => new(
            FileErrorKind.IsSymbolicLink,
            Libc.ELOOP,
            "openat",
            path,
            $"Cannot use '{path}': '{at}' {why}, so what this path reaches is whatever that user makes it lead to. Nothing was done to it. Give the path it leads to if that is the one you mean.");

        internal static FileOperationException SymbolicLinkRefused(string path)
        {
            // Where it leads is said, not recommended: a link someone else made may lead anywhere. A name that is
            // no link a moment later was swapped while it was opened.
            FileStatus? link = FileStatus.OfPath(path, followLinks: false);
            string? real = Libc.RealPath(path);
            string whose = link is { IsSymbolicLink: true } l && l.Uid != Metadata.FileSystemUserId ? $" (the link belongs to user {l.Uid}: check where it leads before you use that path)" : string.Empty;
            string more = link is not { IsSymbolicLink: true }
                ? " It is not one now: it was being renamed or replaced while it was opened. Nothing was done to it; run again when it is quiet."
                : real is null
                    ? $" It leads nowhere that exists{whose}."
                    : $" It leads to '{real}'{whose}; if that is the file you mean, give its path instead.";
            return new FileOperationException(
                FileErrorKind.IsSymbolicLink,
                Libc.ELOOP,
                "open",
                path,
                $"Cannot use '{path}': it is a symbolic link, and links are never followed here.{more}");
        }

        /// <summary>Examines the path before opening it: FIFOs, devices, sockets (and unless allowed, directories) are refused unopened.</summary>
        private static void ThrowUnlessStatAccepts(string path, bool noFollow, bool allowDirectory)
        {
            const string what = "Cannot open";
            if (Libc.StatXPath(Libc.AT_FDCWD, path, noFollow ? Libc.AT_SYMLINK_NOFOLLOW : 0, Libc.STATX_TYPE | Libc.STATX_MODE, out Libc.StatX st) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.ENOENT && IsSymbolicLink(path))
                {
                    throw new FileOperationException(
                        FileErrorKind.DanglingSymbolicLink,
                        errno,
                        "stat",
                        path,
                        $"Cannot open '{path}': it is a symbolic link whose target does not exist. Fix or remove the link, or pass the target's path.");
                }

                throw FileOperationException.FromErrno(errno, "stat", path, what);
            }

            ThrowUnlessAccepted(st.Mode, path, allowDirectory);
        }

        private static bool IsSymbolicLink(string path) =>
            Libc.StatXPath(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_TYPE, out Libc.StatX lst) == 0
            && (lst.Mode & Libc.S_IFMT) == Libc.S_IFLNK;

        private static void ThrowUnlessAccepted(ushort mode, string path, bool allowDirectory)
        {
            int type = mode & Libc.S_IFMT;
            if (type == Libc.S_IFREG || (type == Libc.S_IFDIR && allowDirectory))
            {
                return;
            }

            if (type == Libc.S_IFDIR)
            {
                throw new FileOperationException(
                    FileErrorKind.IsDirectory,
                    Libc.EISDIR,
                    "stat",
                    path,
                    $"Cannot open '{path}': it is a directory. Pass the regular files inside it instead.");
            }

            if (type == Libc.S_IFLNK)
            {
                throw SymbolicLinkRefused(path);
            }

            throw new FileOperationException(
                FileErrorKind.NotRegularFile,
                0,
                "stat",
                path,
                $"Cannot open '{path}': it is {DescribeType(mode)}, not a regular file{(allowDirectory ? " or a directory" : string.Empty)}. It was not opened. Pass a regular file{(allowDirectory ? " or a directory" : string.Empty)}.");
        }
    }
}
