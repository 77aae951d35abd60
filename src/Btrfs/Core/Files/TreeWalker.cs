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

    /// <summary>One entry of a walk.</summary>
    public readonly record struct WalkEntry(string Path, WalkEntryKind Kind, FileOperationException? Error = null);

    /// <summary>
    /// The one tree walker every -Recurse uses: depth first, a directory before its contents, streamed
    /// (memory grows with the depth, not with the number of files). It stays on the starting
    /// filesystem unless asked (a directory whose st_dev differs is reported, not entered: btrfs
    /// subvolumes and snapshots count as other filesystems, as with find -xdev), never follows
    /// symbolic links (not even as the starting point), never opens FIFOs or devices (entries are classified by d_type), and reports a
    /// directory it cannot read as an entry with an error and goes on.
    /// </summary>
    public static class TreeWalker
    {
        /// <summary>Walks <paramref name="root"/>: a file yields itself, a directory itself and everything below it.</summary>
        public static IEnumerable<WalkEntry> Walk(string root, bool crossFileSystems = false)
        {
            ArgumentException.ThrowIfNullOrEmpty(root);
            return WalkIterator(root.Length > 1 ? root.TrimEnd('/') : root, crossFileSystems);
        }

        private static IEnumerable<WalkEntry> WalkIterator(string root, bool crossFileSystems)
        {
            if (FileStatus.OfPath(root, followLinks: false) is { Mode: var mode } && (mode & Libc.S_IFMT) == Libc.S_IFLNK)
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

            if (FileStatus.OfPath(root, followLinks: true) is not FileStatus top)
            {
                int errno = Marshal.GetLastPInvokeError();
                yield return new WalkEntry(root, WalkEntryKind.Error, FileOperationException.FromErrno(errno, "stat", root, "Cannot read"));
                yield break;
            }

            if (!top.IsDirectory)
            {
                yield return new WalkEntry(root, top.IsRegular ? WalkEntryKind.File : WalkEntryKind.Other);
                yield break;
            }

            var stack = new Stack<(string Path, SafeDirectoryStream Dir)>();
            try
            {
                // A directory that cannot be listed is reported once, as an error, instead of as a directory.
                if (Open(root) is { } first)
                {
                    yield return new WalkEntry(root, WalkEntryKind.Directory);
                    stack.Push((root, first));
                }
                else
                {
                    yield return Unreadable(root);
                }

                while (stack.Count > 0)
                {
                    (string dirPath, SafeDirectoryStream dir) = stack.Peek();
                    (string Name, byte Type)? next = Next(dir, dirPath, out FileOperationException? readError);
                    if (readError is not null)
                    {
                        yield return new WalkEntry(dirPath, WalkEntryKind.Error, readError);
                    }

                    if (next is not { } entry)
                    {
                        stack.Pop().Dir.Dispose();
                        continue;
                    }

                    string path = dirPath == "/" ? "/" + entry.Name : dirPath + "/" + entry.Name;
                    WalkEntryKind kind = Classify(entry.Type, path);
                    if (kind != WalkEntryKind.Directory)
                    {
                        yield return new WalkEntry(path, kind);
                        continue;
                    }

                    if (!crossFileSystems && FileStatus.OfPath(path, followLinks: false) is FileStatus st && (st.DevMajor != top.DevMajor || st.DevMinor != top.DevMinor))
                    {
                        yield return new WalkEntry(path, WalkEntryKind.OtherFileSystem);
                        continue;
                    }

                    if (Open(path) is { } sub)
                    {
                        yield return new WalkEntry(path, WalkEntryKind.Directory);
                        stack.Push((path, sub));
                    }
                    else
                    {
                        yield return Unreadable(path);
                    }
                }
            }
            finally
            {
                while (stack.Count > 0)
                {
                    stack.Pop().Dir.Dispose();
                }
            }
        }

        private static SafeDirectoryStream? Open(string path)
        {
            SafeDirectoryStream dir = Libc.OpenDir(path);
            if (dir.IsInvalid)
            {
                dir.Dispose();
                return null;
            }

            return dir;
        }

        private static WalkEntry Unreadable(string path)
        {
            int errno = Marshal.GetLastPInvokeError();
            return new WalkEntry(path, WalkEntryKind.Error, FileOperationException.FromErrno(errno, "opendir", path, "Cannot read the directory", "Its contents were skipped; the rest of the tree was processed."));
        }

        private static unsafe (string Name, byte Type)? Next(SafeDirectoryStream dir, string dirPath, out FileOperationException? error)
        {
            error = null;
            while (true)
            {
                Marshal.SetLastPInvokeError(0);
                byte* d = Libc.ReadDir(dir);
                if (d == null)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno != 0)
                    {
                        error = FileOperationException.FromErrno(errno, "readdir", dirPath, "Cannot read the directory", "The rest of it was skipped.");
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

        private static WalkEntryKind Classify(byte type, string path)
        {
            switch (type)
            {
                case Libc.DT_REG: return WalkEntryKind.File;
                case Libc.DT_DIR: return WalkEntryKind.Directory;
                case Libc.DT_LNK: return WalkEntryKind.SymbolicLink;
                case Libc.DT_UNKNOWN:
                    if (FileStatus.OfPath(path, followLinks: false) is FileStatus st)
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
