namespace Btrfs.Core
{
    using System;
    using System.Runtime.InteropServices;
    using Btrfs.Interop;

    /// <summary>
    /// An open regular file. Opening never blocks and never opens anything but a regular file:
    /// the path is examined first (FIFOs, sockets, devices and directories are refused without being
    /// opened), then opened O_NONBLOCK and examined again through the descriptor, so a path swapped
    /// between the two steps is still caught. Symbolic links are followed, as cat(1) does.
    /// </summary>
    public sealed class RegularFile : IDisposable
    {
        private readonly SafeFileDescriptor handle;

        private RegularFile(SafeFileDescriptor handle, string path, long size, FileSystemType fileSystem)
        {
            this.handle = handle;
            Path = path;
            Size = size;
            FileSystem = fileSystem;
        }

        /// <summary>The path the file was opened by.</summary>
        public string Path { get; }

        /// <summary>The file size in bytes when it was opened.</summary>
        public long Size { get; }

        /// <summary>The filesystem the file lives on.</summary>
        public FileSystemType FileSystem { get; }

        internal SafeFileDescriptor Handle => handle;

        /// <summary>Opens <paramref name="path"/> read-only. Throws <see cref="FileOperationException"/>.</summary>
        public static RegularFile OpenRead(string path)
        {
            ArgumentException.ThrowIfNullOrEmpty(path);
            const string what = "Cannot open";

            if (Libc.StatXPath(Libc.AT_FDCWD, path, 0, Libc.STATX_TYPE | Libc.STATX_MODE, out Libc.StatX st) != 0)
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

            ThrowUnlessRegular(st.Mode, path);

            SafeFileDescriptor fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_CLOEXEC, 0);
            if (fd.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                fd.Dispose();
                throw FileOperationException.FromErrno(errno, "open", path, what);
            }

            try
            {
                if (Libc.StatXDescriptor(fd, string.Empty, Libc.AT_EMPTY_PATH, Libc.STATX_TYPE | Libc.STATX_MODE | Libc.STATX_SIZE, out st) != 0)
                {
                    throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fstat", path, what);
                }

                ThrowUnlessRegular(st.Mode, path);

                if (Libc.FStatFs(fd, out Libc.StatFs sfs) != 0)
                {
                    throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fstatfs", path, what);
                }

                return new RegularFile(fd, path, checked((long)st.Size), FileSystemType.FromMagic(sfs.Type));
            }
            catch
            {
                fd.Dispose();
                throw;
            }
        }

        /// <summary>Closes the descriptor.</summary>
        public void Dispose() => handle.Dispose();

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

        private static bool IsSymbolicLink(string path) =>
            Libc.StatXPath(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_TYPE, out Libc.StatX lst) == 0
            && (lst.Mode & Libc.S_IFMT) == Libc.S_IFLNK;

        private static void ThrowUnlessRegular(ushort mode, string path)
        {
            int type = mode & Libc.S_IFMT;
            if (type == Libc.S_IFREG)
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

            throw new FileOperationException(
                FileErrorKind.NotRegularFile,
                0,
                "stat",
                path,
                $"Cannot open '{path}': it is {DescribeType(mode)}, not a regular file, so it has no extents. It was not opened. Pass a regular file.");
        }
    }
}
