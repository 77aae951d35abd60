namespace Btrfs.Kernel
{
    using System.Globalization;
    using System.Text;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>
    /// Names in an open directory, never through a symbolic link: new files (unnamed with O_TMPFILE,
    /// or hidden and exclusive), links to an open file, renames and the atomic exchange of two names,
    /// removal, directories and symbolic links. The Try forms return 0 or the errno for callers that
    /// decide on it; the others throw a <see cref="FileOperationException"/> naming the path.
    /// </summary>
    internal static class Names
    {
        /// <summary>An unnamed regular file in <paramref name="dir"/> (O_TMPFILE | O_RDWR); null with <paramref name="errno"/> where the filesystem has no O_TMPFILE or refuses it.</summary>
        internal static SafeFileDescriptor? TryCreateUnnamed(SafeFileDescriptor dir, int mode, out int errno)
        {
            SafeFileDescriptor fd = Libc.OpenAt(dir, ".", Libc.O_TMPFILE | Libc.O_RDWR | Libc.O_CLOEXEC, mode);
            errno = fd.IsInvalid ? Errno.Last : 0;
            if (fd.IsInvalid)
            {
                fd.Dispose();
                return null;
            }

            return fd;
        }

        /// <summary>A new regular file <paramref name="name"/> in <paramref name="dir"/> that did not exist (O_CREAT | O_EXCL | O_NOFOLLOW, read-write); null with <paramref name="errno"/> otherwise.</summary>
        internal static SafeFileDescriptor? TryCreateExclusive(SafeFileDescriptor dir, string name, int mode, out int errno)
        {
            SafeFileDescriptor fd = Libc.OpenAt(dir, name, Libc.O_CREAT | Libc.O_EXCL | Libc.O_RDWR | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, mode);
            errno = fd.IsInvalid ? Errno.Last : 0;
            if (fd.IsInvalid)
            {
                fd.Dispose();
                return null;
            }

            return fd;
        }

        /// <summary>
        /// Opens an existing regular file read-only without following a link or blocking (for a look inside); null
        /// when it cannot be opened or is not a regular file. The name is first taken without opening anything
        /// (O_PATH: no FIFO is woken, no device opened) and proven regular, then that same inode is opened through
        /// the descriptor (/proc/self/fd/N): a FIFO or device renamed onto the name in between is never opened.
        /// </summary>
        internal static SafeFileDescriptor? TryOpenForReading(SafeFileDescriptor dir, string name)
        {
            using SafeFileDescriptor named = Libc.OpenAt(dir, name, Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            return named.IsInvalid ? null : TryOpenForReading(named);
        }

        /// <summary>As <see cref="TryOpenForReading(SafeFileDescriptor, string)"/> for a file already named (O_PATH): that very inode, opened read-only, if it is a regular file.</summary>
        internal static SafeFileDescriptor? TryOpenForReading(SafeFileDescriptor named)
        {
            if (FileStatus.Of(named) is not { IsRegular: true })
            {
                return null;
            }

            SafeFileDescriptor fd = Libc.Open("/proc/self/fd/" + named.Fd.ToString(System.Globalization.CultureInfo.InvariantCulture), Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY | Libc.O_CLOEXEC, 0);
            if (fd.IsInvalid || FileStatus.Of(fd) is not FileStatus st || FileStatus.Of(named) is not FileStatus was || !st.SameInode(was))
            {
                fd.Dispose();
                return null;
            }

            return fd;
        }

        /// <summary>Names an existing entry without opening it and without following a link (O_PATH | O_NOFOLLOW): enough to link it, or to ask its status; null when it is not there.</summary>
        internal static SafeFileDescriptor? TryName(SafeFileDescriptor dir, string name)
        {
            SafeFileDescriptor fd = Libc.OpenAt(dir, name, Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            if (fd.IsInvalid)
            {
                fd.Dispose();
                return null;
            }

            return fd;
        }

        /// <summary>Opens an existing name for writing without following a link or blocking.</summary>
        internal static SafeFileDescriptor OpenForWriting(SafeFileDescriptor dir, string name, string path, string what = "Cannot open for writing") =>
            Errno.Check(Libc.OpenAt(dir, name, Libc.O_WRONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NONBLOCK, 0), "open", path, what);

        /// <summary>Opens a subdirectory without following a link (O_DIRECTORY | O_NOFOLLOW); null with <paramref name="errno"/> when that fails.</summary>
        internal static SafeFileDescriptor? TryOpenDirectory(SafeFileDescriptor dir, string name, bool noFollow, out int errno)
        {
            SafeFileDescriptor fd = Libc.OpenAt(dir, name, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC | (noFollow ? Libc.O_NOFOLLOW : 0), 0);
            errno = fd.IsInvalid ? Errno.Last : 0;
            if (fd.IsInvalid)
            {
                fd.Dispose();
                return null;
            }

            return fd;
        }

        /// <summary>
        /// Gives the open file <paramref name="fd"/> the name <paramref name="name"/> in
        /// <paramref name="dir"/> (linkat AT_EMPTY_PATH, or through /proc/self/fd where that needs a
        /// capability the caller lacks); EEXIST when the name is taken: nothing is overwritten. 0 or the errno.
        /// </summary>
        internal static int TryLink(SafeFileDescriptor fd, SafeFileDescriptor dir, string name)
        {
            if (Libc.LinkAtFd(fd, string.Empty, dir, name, Libc.AT_EMPTY_PATH) == 0)
            {
                return 0;
            }

            int errno = Errno.Last;
            if (errno is not (Errno.ENOENT or Errno.EPERM or Errno.EINVAL))
            {
                return errno;
            }

            string self = "/proc/self/fd/" + fd.Fd.ToString(CultureInfo.InvariantCulture);
            return Libc.LinkAt(Libc.AT_FDCWD, self, dir, name, Libc.AT_SYMLINK_FOLLOW) == 0 ? 0 : Errno.Last;
        }

        /// <summary>Exchanges two names of one directory atomically (renameat2 RENAME_EXCHANGE); 0 or the errno (EINVAL, ENOSYS, EOPNOTSUPP where the filesystem cannot).</summary>
        internal static int TryExchange(SafeFileDescriptor dir, string a, string b) =>
            Libc.RenameAt2(dir, a, dir, b, Libc.RENAME_EXCHANGE) == 0 ? 0 : Errno.Last;

        /// <summary>renameat2 RENAME_NOREPLACE within one directory: 0, or the errno (EEXIST: <paramref name="to"/> exists and was left as it is).</summary>
        internal static int TryRenameNoReplace(SafeFileDescriptor dir, string from, string to) =>
            Libc.RenameAt2(dir, from, dir, to, Libc.RENAME_NOREPLACE) == 0 ? 0 : Errno.Last;

        /// <summary>renameat2 RENAME_NOREPLACE from one directory to another: 0, or the errno (EEXIST: <paramref name="to"/> exists and was left as it is).</summary>
        internal static int TryMoveNoReplace(SafeFileDescriptor fromDir, string from, SafeFileDescriptor toDir, string to) =>
            Libc.RenameAt2(fromDir, from, toDir, to, Libc.RENAME_NOREPLACE) == 0 ? 0 : Errno.Last;

        /// <summary>Removes an empty directory (unlinkat AT_REMOVEDIR); false when it could not be removed.</summary>
        internal static bool TryRemoveDirectory(SafeFileDescriptor dir, string name) => Libc.UnlinkAt(dir, name, Libc.AT_REMOVEDIR) == 0;

        /// <summary>renameat within one directory, over <paramref name="to"/> if it exists.</summary>
        internal static void Rename(SafeFileDescriptor dir, string from, string to, string path, string what, string? advice = null) =>
            Errno.Check(Libc.RenameAt(dir, from, dir, to), "renameat", path, what, advice);

        /// <summary>Removes a (non-directory) name; false when it could not be removed.</summary>
        internal static bool TryRemove(SafeFileDescriptor dir, string name) => Libc.UnlinkAt(dir, name, 0) == 0;

        /// <summary>Removes a (non-directory) name.</summary>
        internal static void Remove(SafeFileDescriptor dir, string name, string path, string what) =>
            Errno.Check(Libc.UnlinkAt(dir, name, 0), "unlinkat", path, what);

        /// <summary>mkdirat: 0, or the errno (EEXIST is the caller's to judge).</summary>
        internal static int TryMakeDirectory(SafeFileDescriptor dir, string name, uint mode) =>
            Libc.MkDirAt(dir, name, mode) == 0 ? 0 : Errno.Last;

        /// <summary>symlinkat with the target's bytes exactly as read (<see cref="ReadSymbolicLinkBytes"/>): a copy of a link points where it did.</summary>
        internal static unsafe void MakeSymbolicLink(System.ReadOnlySpan<byte> target, SafeFileDescriptor dir, string name, string path)
        {
            byte[] terminated = new byte[target.Length + 1];
            target.CopyTo(terminated);
            fixed (byte* t = terminated)
            {
                Errno.Check(Libc.SymlinkAtBytes(t, dir, name), "symlinkat", path, "Cannot create the symbolic link");
            }
        }

        /// <summary>
        /// The kernel's path of an open file (readlink of /proc/self/fd/N): absolute in this process's root,
        /// through the mount it was opened on, ending in " (deleted)" when it has no name left; null when unknown.
        /// </summary>
        internal static string? PathOfDescriptor(SafeFileDescriptor fd)
        {
            try
            {
                return new System.IO.FileInfo("/proc/self/fd/" + fd.Fd.ToString(System.Globalization.CultureInfo.InvariantCulture)).LinkTarget;
            }
            catch (System.Exception ex) when (ex is System.IO.IOException or System.UnauthorizedAccessException)
            {
                return null;
            }
        }

        /// <summary>
        /// <see cref="PathOfDescriptor"/> of a file that still has a name: absolute, without the kernel's " (deleted)";
        /// null otherwise. What it names may have been renamed since: a caller that opens it again checks the inode.
        /// </summary>
        internal static string? NamedPathOfDescriptor(SafeFileDescriptor fd) =>
            PathOfDescriptor(fd) is string p && p.StartsWith('/') && !p.EndsWith(" (deleted)", System.StringComparison.Ordinal) ? p : null;

        /// <summary>readlinkat: the target of a symbolic link as text (bytes that are not UTF-8 become U+FFFD: for looking at, never for copying).</summary>
        internal static string ReadSymbolicLink(SafeFileDescriptor dir, string name, string path) =>
            Encoding.UTF8.GetString(ReadSymbolicLinkBytes(dir, name, path));

        /// <summary>readlinkat: the target of a symbolic link, byte for byte (what a copy of the link must hold).</summary>
        internal static unsafe byte[] ReadSymbolicLinkBytes(SafeFileDescriptor dir, string name, string path)
        {
            byte[] buffer = new byte[4096];
            nint n;
            fixed (byte* b = buffer)
            {
                n = Libc.ReadLinkAt(dir, name, b, (nuint)buffer.Length);
            }

            Errno.Check((long)n, "readlinkat", path, "Cannot read the symbolic link");
            return buffer[..(int)n];
        }
    }
}
