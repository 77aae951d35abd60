namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Runtime.InteropServices;
    using Btrfs.Interop;

    /// <summary>What a walk found at a path.</summary>
    public enum WalkEntryKind
    {
        /// <summary>A regular file.</summary>
        File,

        /// <summary>A directory (yielded before its contents).</summary>
        Directory,

        /// <summary>A symbolic link: never followed.</summary>
        SymbolicLink,

        /// <summary>A FIFO, socket or device: never opened.</summary>
        Other,

        /// <summary>A directory on another filesystem (or btrfs subvolume), not entered.</summary>
        OtherFileSystem,

        /// <summary>A directory that could not be read (reported instead of it); <see cref="WalkEntry.Error"/> says why.</summary>
        Error,
    }

    /// <summary>
    /// A name in an open directory: how the walker hands out what it found, so that every later step
    /// opens it relative to the directory it was listed in, with O_NOFOLLOW, instead of resolving its
    /// path again (where a directory swapped for a symbolic link would lead somewhere else).
    /// <see cref="Directory"/> is the walker's and valid while the entry is being handled; keep it
    /// longer with <see cref="SafeHandle.DangerousAddRef"/>.
    /// </summary>
    internal readonly record struct FileLocation(SafeFileDescriptor Directory, string Name, string Path);

    /// <summary>One entry of a walk.</summary>
    public readonly record struct WalkEntry(string Path, WalkEntryKind Kind, FileOperationException? Error = null)
    {
        /// <summary>Where the entry is: its directory (open) and its name there. Null for a starting point with no parent ("/").</summary>
        internal FileLocation? Location { get; init; }

        /// <summary>For a directory: the walker's own descriptor of it (O_DIRECTORY | O_NOFOLLOW), the one whose entries are listed.</summary>
        internal SafeFileDescriptor? Handle { get; init; }
    }

    /// <summary>
    /// The one tree walker every -Recurse uses: depth first, a directory before its contents, streamed
    /// (memory grows with the depth, not with the number of files). Every directory is opened relative
    /// to its parent's descriptor with O_NOFOLLOW | O_DIRECTORY and listed through that descriptor, and
    /// every entry is handed out as a <see cref="FileLocation"/>: a path is never resolved again once
    /// classified, so a directory swapped for a symbolic link mid-walk leads nowhere. It stays on the
    /// starting filesystem unless asked (a directory whose st_dev or mount differs is reported, not entered:
    /// btrfs subvolumes and snapshots count as other filesystems, as with find -xdev, and so do bind
    /// mounts), never enters a directory that is one of its own ancestors (a loop), never follows
    /// symbolic links (not even as the starting point), never opens FIFOs or devices (entries are
    /// classified by d_type), and reports a directory it cannot read as an entry with an error and goes on.
    /// </summary>
    public static class TreeWalker
    {
        /// <summary>Walks <paramref name="root"/>: a file yields itself, a directory itself and everything below it.</summary>
        public static IEnumerable<WalkEntry> Walk(string root, bool crossFileSystems = false) => Walk(root, crossFileSystems, null);

        /// <summary>
        /// As <see cref="Walk(string, bool)"/>; <paramref name="enter"/> is asked before the walk goes
        /// into a directory below the root (its path, its status, its depth: 1 for the root's children):
        /// false yields the directory but not its contents.
        /// </summary>
        internal static IEnumerable<WalkEntry> Walk(string root, bool crossFileSystems, Func<string, FileStatus, int, bool>? enter) => Walk(root, crossFileSystems, WalkFilter.None, enter);

        /// <summary>
        /// As <see cref="Walk(string, bool, Func{string, FileStatus, int, bool})"/>, taking only what
        /// <paramref name="filter"/> takes below the root (the root itself, named by the user, always).
        /// </summary>
        internal static IEnumerable<WalkEntry> Walk(string root, bool crossFileSystems, WalkFilter filter, Func<string, FileStatus, int, bool>? enter)
        {
            ArgumentException.ThrowIfNullOrEmpty(root);
            ArgumentNullException.ThrowIfNull(filter);
            return WalkIterator(root.Length > 1 ? root.TrimEnd('/') : root, crossFileSystems, filter, enter);
        }

        private static IEnumerable<WalkEntry> WalkIterator(string root, bool crossFileSystems, WalkFilter filter, Func<string, FileStatus, int, bool>? enter)
        {
            if (FileStatus.OfPath(root, followLinks: false) is not FileStatus top)
            {
                int errno = Marshal.GetLastPInvokeError();
                yield return new WalkEntry(root, WalkEntryKind.Error, FileOperationException.FromErrno(errno, "stat", root, "Cannot read"));
                yield break;
            }

            if ((top.Mode & Libc.S_IFMT) == Libc.S_IFLNK)
            {
                string target = Libc.RealPath(root) is string real ? $" ('{real}')" : string.Empty;
                yield return new WalkEntry(root, WalkEntryKind.Error, new FileOperationException(
                    FileErrorKind.IsSymbolicLink,
                    Libc.ELOOP,
                    "lstat",
                    root,
                    $"Cannot walk '{root}': it is a symbolic link, and -Recurse never follows symbolic links. Pass the path of its target{target} instead."));
                yield break;
            }

            // The starting point's own directory, opened by path (the user chose it), then the starting
            // point relative to it.
            string parentPath = root == "/" ? "/" : (System.IO.Path.GetDirectoryName(root) is { Length: > 0 } p ? p : ".");
            string rootName = root == "/" ? "." : System.IO.Path.GetFileName(root);
            SafeFileDescriptor parent = Libc.Open(parentPath, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (parent.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                parent.Dispose();
                yield return new WalkEntry(root, WalkEntryKind.Error, FileOperationException.FromErrno(errno, "open", parentPath, "Cannot open the directory", "Nothing below it was processed."));
                yield break;
            }

            var stack = new Stack<Level>();
            try
            {
                var rootLocation = new FileLocation(parent, rootName, root);
                if (!top.IsDirectory)
                {
                    yield return new WalkEntry(root, top.IsRegular ? WalkEntryKind.File : WalkEntryKind.Other) { Location = rootLocation };
                    yield break;
                }

                // A directory that cannot be listed is reported once, as an error, instead of as a directory.
                Level? first = OpenLevel(parent, rootName, root, out FileOperationException? rootError);
                if (first is null)
                {
                    yield return new WalkEntry(root, WalkEntryKind.Error, rootError);
                    yield break;
                }

                if (!first.Status.SameInode(top))
                {
                    first.Dispose();
                    yield return new WalkEntry(root, WalkEntryKind.Error, Swapped(root));
                    yield break;
                }

                stack.Push(first);
                yield return new WalkEntry(root, WalkEntryKind.Directory) { Location = rootLocation, Handle = first.Handle };

                while (stack.Count > 0)
                {
                    Level level = stack.Peek();
                    (string Name, byte Type)? next = Next(level, out FileOperationException? readError);
                    if (readError is not null)
                    {
                        yield return new WalkEntry(level.Path, WalkEntryKind.Error, readError);
                    }

                    if (next is not { } entry)
                    {
                        stack.Pop().Dispose();
                        continue;
                    }

                    string path = level.Path == "/" ? "/" + entry.Name : level.Path + "/" + entry.Name;
                    var location = new FileLocation(level.Handle, entry.Name, path);
                    WalkEntryKind kind = Classify(level.Handle, entry.Type, entry.Name);
                    if (kind != WalkEntryKind.Directory)
                    {
                        if (filter.TakesFile(entry.Name))
                        {
                            yield return new WalkEntry(path, kind) { Location = location };
                        }

                        continue;
                    }

                    if (!filter.TakesDirectory(entry.Name))
                    {
                        continue; // excluded: neither it nor anything below it
                    }

                    Level? sub = OpenLevel(level.Handle, entry.Name, path, out FileOperationException? openError);
                    if (sub is null)
                    {
                        // Swapped for a symbolic link (or something else) since it was listed: never followed.
                        if (openError!.Errno is Libc.ELOOP or Libc.ENOTDIR)
                        {
                            WalkEntryKind now = Classify(level.Handle, Libc.DT_UNKNOWN, entry.Name);
                            yield return new WalkEntry(path, now == WalkEntryKind.Directory ? WalkEntryKind.Other : now) { Location = location };
                        }
                        else
                        {
                            yield return new WalkEntry(path, WalkEntryKind.Error, openError) { Location = location };
                        }

                        continue;
                    }

                    // Another filesystem or btrfs subvolume (st_dev), or another mount of the same one (a
                    // bind mount: statx's mount id), is not entered unless asked.
                    bool otherDevice = sub.Status.DevMajor != top.DevMajor || sub.Status.DevMinor != top.DevMinor;
                    bool otherMount = sub.Status.MountId != 0 && top.MountId != 0 && sub.Status.MountId != top.MountId;
                    if (!crossFileSystems && (otherDevice || otherMount))
                    {
                        sub.Dispose();
                        yield return new WalkEntry(path, WalkEntryKind.OtherFileSystem) { Location = location };
                        continue;
                    }

                    // A directory that is one of its own ancestors (a bind mount of an ancestor) would be walked forever.
                    if (IsAncestor(stack, sub.Status))
                    {
                        sub.Dispose();
                        yield return new WalkEntry(path, WalkEntryKind.Error, new FileOperationException(
                            FileErrorKind.InvalidArgument,
                            Libc.ELOOP,
                            "openat",
                            path,
                            $"Not descending into '{path}': it is the same directory as one above it (a bind mount makes a loop), and walking it would never end. The rest of the tree was processed.")) { Location = location };
                        continue;
                    }

                    if (!filter.Enters(stack.Count) || (enter is not null && !enter(path, sub.Status, stack.Count)))
                    {
                        // Yielded (its own attributes may matter) but not entered.
                        try
                        {
                            yield return new WalkEntry(path, WalkEntryKind.Directory) { Location = location, Handle = sub.Handle };
                        }
                        finally
                        {
                            sub.Dispose();
                        }

                        continue;
                    }

                    stack.Push(sub);
                    yield return new WalkEntry(path, WalkEntryKind.Directory) { Location = location, Handle = sub.Handle };
                }
            }
            finally
            {
                while (stack.Count > 0)
                {
                    stack.Pop().Dispose();
                }

                parent.Dispose();
            }
        }

        /// <summary>One directory being listed: its descriptor (handed out) and a stream over a duplicate of it.</summary>
        private sealed class Level : IDisposable
        {
            internal Level(string path, SafeFileDescriptor handle, SafeDirectoryStream stream, FileStatus status)
            {
                Path = path;
                Handle = handle;
                Stream = stream;
                Status = status;
            }

            internal string Path { get; }

            internal SafeFileDescriptor Handle { get; }

            internal SafeDirectoryStream Stream { get; }

            internal FileStatus Status { get; }

            public void Dispose()
            {
                Stream.Dispose();
                Handle.Dispose();
            }
        }

        private static Level? OpenLevel(SafeFileDescriptor parent, string name, string path, out FileOperationException? error)
        {
            error = null;
            SafeFileDescriptor fd = Libc.OpenAt(parent, name, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            if (fd.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                fd.Dispose();
                error = FileOperationException.FromErrno(errno, "openat", path, "Cannot read the directory", "Its contents were skipped; the rest of the tree was processed.");
                return null;
            }

            if (FileStatus.Of(fd) is not FileStatus st)
            {
                int errno = Marshal.GetLastPInvokeError();
                fd.Dispose();
                error = FileOperationException.FromErrno(errno, "fstat", path, "Cannot read the directory", "Its contents were skipped; the rest of the tree was processed.");
                return null;
            }

            // fdopendir takes the descriptor it is given: give it a duplicate, keep the original to hand out.
            int dup = Libc.Fcntl(fd, Libc.F_DUPFD_CLOEXEC, 0);
            SafeDirectoryStream stream = dup < 0 ? new SafeDirectoryStream() : Libc.FdOpenDir(dup);
            if (stream.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (dup >= 0)
                {
                    _ = Libc.Close(dup);
                }

                stream.Dispose();
                fd.Dispose();
                error = FileOperationException.FromErrno(errno, "fdopendir", path, "Cannot read the directory", "Its contents were skipped; the rest of the tree was processed.");
                return null;
            }

            return new Level(path, fd, stream, st);
        }

        private static bool IsAncestor(Stack<Level> stack, in FileStatus st)
        {
            foreach (Level level in stack)
            {
                if (level.Status.SameInode(st))
                {
                    return true;
                }
            }

            return false;
        }

        private static FileOperationException Swapped(string path) =>
            new(FileErrorKind.ChangedDuringCopy, 0, "openat", path, $"Cannot walk '{path}': it was replaced by another file while it was being opened. Nothing below it was processed.");

        private static unsafe (string Name, byte Type)? Next(Level level, out FileOperationException? error)
        {
            error = null;
            while (true)
            {
                Marshal.SetLastPInvokeError(0);
                byte* d = Libc.ReadDir(level.Stream);
                if (d == null)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno != 0)
                    {
                        error = FileOperationException.FromErrno(errno, "readdir", level.Path, "Cannot read the directory", "The rest of it was skipped.");
                    }

                    return null;
                }

                string name = Marshal.PtrToStringUTF8((nint)(d + Libc.DirentNameOffset)) ?? string.Empty;
                if (name is "." or ".." || name.Length == 0)
                {
                    continue;
                }

                return (name, d[Libc.DirentTypeOffset]);
            }
        }

        private static WalkEntryKind Classify(SafeFileDescriptor dir, byte type, string name)
        {
            switch (type)
            {
                case Libc.DT_REG: return WalkEntryKind.File;
                case Libc.DT_DIR: return WalkEntryKind.Directory;
                case Libc.DT_LNK: return WalkEntryKind.SymbolicLink;
                case Libc.DT_UNKNOWN:
                    if (FileStatus.OfAt(dir, name) is FileStatus st)
                    {
                        return (st.Mode & Libc.S_IFMT) switch
                        {
                            Libc.S_IFREG => WalkEntryKind.File,
                            Libc.S_IFDIR => WalkEntryKind.Directory,
                            Libc.S_IFLNK => WalkEntryKind.SymbolicLink,
                            _ => WalkEntryKind.Other,
                        };
                    }

                    return WalkEntryKind.Other;
                default: return WalkEntryKind.Other;
            }
        }
    }
}
