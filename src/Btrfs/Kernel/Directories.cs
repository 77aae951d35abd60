namespace Btrfs.Kernel
{
    using System.Runtime.InteropServices;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>An open directory (O_RDONLY | O_DIRECTORY): what O_TMPFILE, linkat, renameat and syncfs work through.</summary>
    internal static class DirectoryHandle
    {
        /// <summary>Opens <paramref name="path"/> as a directory; a <see cref="FileOperationException"/> naming it when that fails.</summary>
        internal static SafeFileDescriptor Open(string path, string? advice = null)
        {
            SafeFileDescriptor dir = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (dir.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                dir.Dispose();
                throw FileOperationException.FromErrno(errno, "open", path, "Cannot open the directory", advice);
            }

            return dir;
        }

        /// <summary>As <see cref="Open"/>, with the error handed back instead of thrown.</summary>
        internal static SafeFileDescriptor? TryOpen(string path, string? advice, out FileOperationException? error)
        {
            error = null;
            SafeFileDescriptor dir = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (dir.IsInvalid)
            {
                error = Errno.Failure("open", path, "Cannot open the directory", advice);
                dir.Dispose();
                return null;
            }

            return dir;
        }

        /// <summary>
        /// The refusal when the directory <paramref name="dir"/> could not be opened to create something in it
        /// (<paramref name="target"/>, the error's target; <paramref name="what"/>: "create '/x/new.img'") because
        /// of permissions (EACCES): says which directory on the way this user may not enter, or what it lacks on
        /// <paramref name="dir"/> itself (creating needs it readable, writable and searchable), then
        /// <paramref name="after"/>. Any other failure is handed back as it is.
        /// </summary>
        internal static FileOperationException CannotCreateIn(FileOperationException ex, string dir, string target, string what, string after = "Nothing was created.")
        {
            if (ex.Errno != Errno.EACCES)
            {
                return ex;
            }

            string full = System.IO.Path.GetFullPath(dir);
            string? blocked = FirstUnsearchable(dir);
            if (blocked is null && Libc.FAccessAt(Libc.AT_FDCWD, full, 0, Libc.AT_EACCESS) != 0 && Marshal.GetLastPInvokeError() != Errno.EACCES)
            {
                return ex; // not there (or not to be looked up) by that name: nothing to say about its permissions
            }

            string why = blocked is not null
                ? $"this user may not enter the directory '{blocked}' (no search permission), so '{full}' cannot be reached"
                : $"this user may not {Lacking(full)} the directory '{full}', and creating needs it readable (the new name is made through it, and its fsync makes the name last through a crash), writable and searchable";
            return new FileOperationException(
                FileErrorKind.AccessDenied,
                Errno.EACCES,
                "open",
                target,
                $"Cannot {what}: {why}. Run as a user who can (or as root). {after}",
                ex);
        }

        /// <summary>
        /// The first directory on the way to <paramref name="path"/> (its ancestors, from the root down; not the path
        /// itself) this user may not search (enter), or null: where an EACCES on the way comes from. For messages.
        /// </summary>
        internal static string? FirstUnsearchable(string path)
        {
            // '..' after a link leads where the kernel says, not where the text does: nothing is said then.
            if (System.Array.IndexOf(path.Split('/'), "..") >= 0)
            {
                return null;
            }

            string full = System.IO.Path.GetFullPath(path).TrimEnd('/');
            for (int at = 0; at >= 0 && at < full.Length; at = full.IndexOf('/', at + 1))
            {
                string ancestor = at == 0 ? "/" : full[..at];
                if (Libc.FAccessAt(Libc.AT_FDCWD, ancestor, Libc.X_OK, Libc.AT_EACCESS) != 0 && Marshal.GetLastPInvokeError() == Errno.EACCES)
                {
                    return ancestor;
                }
            }

            return null;
        }

        /// <summary>What this user may not do with the directory <paramref name="dir"/>: "read", "write in or enter", …</summary>
        private static string Lacking(string dir)
        {
            var lacking = new System.Collections.Generic.List<string>(3);
            foreach ((int mode, string verb) in new[] { (Libc.R_OK, "read"), (Libc.W_OK, "write in"), (Libc.X_OK, "enter") })
            {
                if (Libc.FAccessAt(Libc.AT_FDCWD, dir, mode, Libc.AT_EACCESS) != 0 && Marshal.GetLastPInvokeError() is Errno.EACCES or Errno.EPERM)
                {
                    lacking.Add(verb); // a permission lacking, not a read-only mount (EROFS) or a refused call
                }
            }

            return lacking.Count switch
            {
                0 => "open",
                1 => lacking[0],
                _ => string.Join(", ", lacking.GetRange(0, lacking.Count - 1)) + " or " + lacking[^1],
            };
        }

        /// <summary>
        /// Opens <paramref name="path"/> as a directory, or, where this user may search it but not read it (EACCES,
        /// mode 0711), only names it (<see cref="TryName"/>): enough to open and examine what is in it.
        /// <see cref="IsNamedOnly"/> tells which. The open's error when neither works.
        /// </summary>
        internal static SafeFileDescriptor OpenOrName(string path, string? advice = null) =>
            TryOpenOrName(path, advice, out FileOperationException? error) ?? throw error!;

        /// <summary>As <see cref="OpenOrName"/>, with the open's error handed back instead of thrown.</summary>
        internal static SafeFileDescriptor? TryOpenOrName(string path, string? advice, out FileOperationException? error)
        {
            SafeFileDescriptor? dir = TryOpen(path, advice, out error);
            if (dir is null && error!.Errno == Errno.EACCES && TryName(path) is SafeFileDescriptor named)
            {
                error = null;
                return named;
            }

            return dir;
        }

        /// <summary>True when <paramref name="dir"/> was only named (O_PATH): it cannot be listed, synced or asked for its attributes.</summary>
        internal static bool IsNamedOnly(SafeFileDescriptor dir) => Libc.Fcntl(dir, Libc.F_GETFL, 0) is int flags and >= 0 && (flags & Libc.O_PATH) != 0;

        /// <summary>
        /// <paramref name="path"/> as a directory only named, not opened (O_PATH | O_DIRECTORY): what a user who may
        /// search it but not read it (mode 0711) can have. Good for openat and statx of what is in it, for nothing
        /// that reads or syncs the directory itself (fsync, syncfs and ioctl give EBADF); null when even that fails.
        /// </summary>
        internal static SafeFileDescriptor? TryName(string path)
        {
            SafeFileDescriptor dir = Libc.Open(path, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (dir.IsInvalid)
            {
                dir.Dispose();
                return null;
            }

            return dir;
        }

        /// <summary>
        /// The directory <paramref name="relative"/> ('/'-separated names) below the open directory
        /// <paramref name="root"/>, reached one name at a time from descriptors (openat with O_DIRECTORY |
        /// O_NOFOLLOW): a name that is now a symbolic link, or no longer a directory, ends it with a
        /// <see cref="FileOperationException"/> naming <paramref name="path"/> (ELOOP: SymbolicLinkLoop;
        /// ENOTDIR or ENOENT: NotFound).
        /// </summary>
        internal static SafeFileDescriptor OpenBelow(SafeFileDescriptor root, string relative, string path)
        {
            SafeFileDescriptor current = Duplicate(root, path);
            foreach (string name in relative.Split('/', System.StringSplitOptions.RemoveEmptyEntries))
            {
                SafeFileDescriptor next = Libc.OpenAt(current, name, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                if (next.IsInvalid)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    next.Dispose();
                    current.Dispose();
                    throw FileOperationException.FromErrno(errno, "openat", path, "Cannot open the directory of", errno == Libc.ELOOP ? "A directory on its way is a symbolic link now; it is not followed." : null);
                }

                current.Dispose();
                current = next;
            }

            return current;
        }

        /// <summary>
        /// Opens the directory <paramref name="path"/> as the kernel would reach it, one name at a time from descriptors
        /// (openat O_PATH | O_NOFOLLOW), following a symbolic link on the way (its last name too) only when it belongs to
        /// root or to <paramref name="me"/>: one of another user's is <paramref name="untrusted"/>(where, why), thrown
        /// before anything is opened beyond it. Each link is read through the descriptor of the very link whose owner
        /// was checked, and ".." goes back to the directory actually passed, so a name swapped for a link meanwhile is
        /// either seen as that link or not used at all (a hostile review: a check of the path, then an open of the path,
        /// let another user's link swapped in between lead the copies wherever that user chose).
        /// </summary>
        internal static SafeFileDescriptor OpenFollowingTrustedLinks(string path, uint me, System.Func<string, string, FileOperationException> untrusted, string? advice = null, bool orName = false) =>
            OpenFollowingTrustedLinks(System.IO.Path.GetFullPath(path), me, untrusted, advice, orName, null, null);

        /// <summary>
        /// As <see cref="OpenFollowingTrustedLinks(string, uint, System.Func{string, string, FileOperationException}, string?, bool)"/>;
        /// a relative <paramref name="path"/> is taken from the open directory <paramref name="from"/> (shown as
        /// <paramref name="fromPath"/> in messages), never from a text of where that directory is. An absolute one is walked
        /// as written: each '..' goes up from where the walk is (never collapsed by the text, a review: "/d/sub/../x",
        /// sub a link, is not "/d/x").
        /// </summary>
        private static SafeFileDescriptor OpenFollowingTrustedLinks(string path, uint me, System.Func<string, string, FileOperationException> untrusted, string? advice, bool orName, SafeFileDescriptor? from, string? fromPath)
        {
            var pending = new System.Collections.Generic.Stack<string>();
            void Push(string p)
            {
                string[] parts = p.Split('/', System.StringSplitOptions.RemoveEmptyEntries);
                for (int k = parts.Length - 1; k >= 0; k--)
                {
                    pending.Push(parts[k]);
                }
            }

            var passed = new System.Collections.Generic.List<(SafeFileDescriptor Fd, string Path)>();
            string shownPath = path.StartsWith('/') || fromPath is null ? path : (fromPath == "/" ? string.Empty : fromPath.TrimEnd('/')) + "/" + path; // for messages only
            FileOperationException Failure(int errno, string at) =>
                FileOperationException.FromErrno(errno, "openat", shownPath, "Cannot open the directory", advice ?? (at != shownPath ? $"('{at}' on the way.)" : null));

            // The directory where a walk begins, or goes up to from its beginning: its descriptor (O_PATH).
            void Begin(SafeFileDescriptor? at, string name, string shown)
            {
                SafeFileDescriptor fd = at is null ? Libc.Open(name, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0) : Libc.OpenAt(at, name, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
                if (fd.IsInvalid)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    fd.Dispose();
                    throw Failure(errno, shown);
                }

                foreach ((SafeFileDescriptor old, _) in passed)
                {
                    old.Dispose();
                }

                passed.Clear();
                passed.Add((fd, shown));
            }

            try
            {
                if (from is not null && !path.StartsWith('/'))
                {
                    Begin(from, ".", fromPath ?? ".");
                    Push(path);
                }
                else
                {
                    Begin(null, "/", "/");
                    Push(path.StartsWith('/') ? path : System.IO.Path.GetFullPath(path));
                }

                for (int links = 0; pending.Count > 0;)
                {
                    string name = pending.Pop();
                    (SafeFileDescriptor current, string at) = passed[^1];
                    if (name == ".")
                    {
                        continue;
                    }

                    if (name == "..")
                    {
                        if (passed.Count > 1)
                        {
                            passed[^1].Fd.Dispose();
                            passed.RemoveAt(passed.Count - 1);
                        }
                        else
                        {
                            // Above where the walk began: the kernel's parent of that directory ("/" stays "/").
                            Begin(current, "..", System.IO.Path.GetDirectoryName(at.TrimEnd('/')) is { Length: > 0 } up ? up : "/");
                        }

                        continue;
                    }

                    string next = at == "/" ? "/" + name : at + "/" + name;

                    // As a directory first: that lookup mounts an automount point (autofs, x-systemd.automount) as the
                    // kernel's own walk would; O_PATH alone stops at its trap. A link or a file: looked at as it is.
                    SafeFileDescriptor fd = Libc.OpenAt(current, name, Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
                    if (fd.IsInvalid && Marshal.GetLastPInvokeError() == Libc.ENOTDIR)
                    {
                        fd.Dispose();
                        fd = Libc.OpenAt(current, name, Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                    }

                    if (fd.IsInvalid)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        fd.Dispose();
                        throw Failure(errno, next);
                    }

                    FileStatus? st = FileStatus.Of(fd);
                    if (st is { IsSymbolicLink: true } link)
                    {
                        try
                        {
                            if (link.Uid != 0 && link.Uid != me)
                            {
                                throw untrusted(next, $"is a symbolic link that belongs to user {link.Uid}, who chooses where it leads");
                            }

                            if (++links > 40)
                            {
                                throw Failure(Libc.ELOOP, next);
                            }

                            if (Libc.FStatFs(fd, out Libc.StatFs where) == 0 && where.Type == Libc.PROC_SUPER_MAGIC)
                            {
                                // A /proc link (/proc/PID/root, cwd): where it leads is no path its text says (another mount
                                // namespace's root), so the kernel follows it, checking who may (before: followed by its text,
                                // "/", it led into this namespace instead; the suite's test of a mount in another namespace).
                                // Where it leads is a new start: a '..' after it asks the kernel for that directory's parent
                                // (a review: it went back to /proc/PID by the text).
                                Begin(current, name, next);
                                continue;
                            }

                            string target = ExactTarget(fd, next, shownPath);
                            if (target.StartsWith('/'))
                            {
                                Begin(null, "/", "/"); // the top of this namespace, whatever directory the walk began in
                            }

                            Push(target);
                        }
                        finally
                        {
                            fd.Dispose();
                        }

                        continue;
                    }

                    if (st is not { IsDirectory: true })
                    {
                        int errno = st is null ? Marshal.GetLastPInvokeError() : Libc.ENOTDIR;
                        fd.Dispose();
                        throw Failure(errno, next);
                    }

                    passed.Add((fd, next));
                }

                // The directory reached, opened for reading through its own descriptor.
                SafeFileDescriptor dir = Libc.OpenAt(passed[^1].Fd, ".", Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
                if (dir.IsInvalid)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    dir.Dispose();
                    if (orName && errno == Libc.EACCES)
                    {
                        // <paramref name="orName"/>: one this user may search but not read, only named (O_PATH), as OpenOrName gives it.
                        SafeFileDescriptor named = passed[^1].Fd;
                        passed.RemoveAt(passed.Count - 1);
                        return named;
                    }

                    throw Failure(errno, path);
                }

                return dir;
            }
            finally
            {
                foreach ((SafeFileDescriptor fd, _) in passed)
                {
                    fd.Dispose();
                }
            }
        }

        /// <summary>
        /// Where <paramref name="path"/> (a file) is, as the kernel would reach it, following symbolic links (the last name's
        /// too) only where they belong to root or to <paramref name="me"/> (<see cref="OpenFollowingTrustedLinks"/>; one of
        /// another user's is <paramref name="untrusted"/>(where, why)): the directory holding the name it ends at, open (or
        /// only named, where it may be searched but not read), and that name, which was no symbolic link when looked at (to be
        /// opened with O_NOFOLLOW: one swapped in since is refused). Each link is read through the descriptor of the very
        /// link whose owner was checked. (Before: New-BtrfsReflink followed another user's link given as the source, so root
        /// could be led to copy a file only root may read into a file that user owns. A hostile test.)
        /// </summary>
        internal static (SafeFileDescriptor Directory, string Name) ResolveFollowingTrustedLinks(string path, uint me, System.Func<string, string, FileOperationException> untrusted)
        {
            string current = System.IO.Path.GetFullPath(path);
            string shown = current; // where the name is, for messages only
            SafeFileDescriptor? from = null; // a relative target is taken from the directory of its link, by descriptor
            string? fromShown = null; // that directory, for messages only
            try
            {
                for (int links = 0; ; links++)
                {
                    string trimmed = current.Length > 1 ? current.TrimEnd('/') : current;
                    string name = System.IO.Path.GetFileName(trimmed);
                    string parent = System.IO.Path.GetDirectoryName(trimmed) is { Length: > 0 } d ? d : (trimmed.StartsWith('/') ? "/" : ".");
                    if (name is "" or "." or "..")
                    {
                        // It ends in a directory named by the walk itself ("/", "sub/.."): that directory, as the kernel reaches it.
                        return (OpenFollowingTrustedLinks(trimmed.Length == 0 ? "/" : trimmed, me, untrusted, null, orName: true, from, fromShown), ".");
                    }

                    SafeFileDescriptor dir = OpenFollowingTrustedLinks(parent, me, untrusted, null, orName: true, from, fromShown);
                    bool keep = false;
                    try
                    {
                        using SafeFileDescriptor named = Libc.OpenAt(dir, name, Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                        if (named.IsInvalid || FileStatus.Of(named) is not { IsSymbolicLink: true } link)
                        {
                            keep = true;
                            return (dir, name); // missing, or no link: the open that follows says what it is
                        }

                        string at = shown.Length > 1 ? shown.TrimEnd('/') : shown;
                        if (link.Uid != 0 && link.Uid != me)
                        {
                            throw untrusted(at, $"is a symbolic link that belongs to user {link.Uid}, who chooses where it leads");
                        }

                        if (links >= 40)
                        {
                            throw FileOperationException.FromErrno(Libc.ELOOP, "openat", path, "Cannot open");
                        }

                        if (Libc.FStatFs(named, out Libc.StatFs where) == 0 && where.Type == Libc.PROC_SUPER_MAGIC)
                        {
                            // A /proc link (/proc/PID/cwd, /proc/self/fd/N): what it leads to is no path its text says (another mount
                            // namespace's, a deleted file's "NAME (deleted)"). A directory is followed by the kernel; a file is refused:
                            // it has no directory and name here to be opened by (a hostile test: the text led to a decoy).
                            SafeFileDescriptor through = Libc.OpenAt(dir, name, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
                            if (!through.IsInvalid)
                            {
                                return (through, ".");
                            }

                            through.Dispose();
                            throw new FileOperationException(
                                FileErrorKind.IsSymbolicLink,
                                Libc.ELOOP,
                                "openat",
                                path,
                                $"Cannot open '{path}': '{at}' is a link of /proc to a file, which is not followed by name here (its text may name another file: one deleted shows as 'NAME (deleted)', one in another mount namespace by that namespace's path). Give the file's own path.");
                        }

                        string target = ExactTarget(named, at, path);
                        from?.Dispose();
                        from = null;
                        if (target.StartsWith('/'))
                        {
                            current = target;
                            shown = target;
                            fromShown = null;
                        }
                        else
                        {
                            from = dir; // the link's own directory, by its descriptor
                            keep = true;
                            current = target;
                            fromShown = System.IO.Path.GetDirectoryName(at) is { Length: > 0 } linkDir ? linkDir : "/";
                            shown = (fromShown == "/" ? string.Empty : fromShown) + "/" + target;
                        }
                    }
                    finally
                    {
                        if (!keep)
                        {
                            dir.Dispose();
                        }
                    }
                }
            }
            finally
            {
                from?.Dispose();
            }
        }

        /// <summary>
        /// The target of the link <paramref name="link"/> (an O_PATH descriptor of it, at <paramref name="at"/>), decoded
        /// exactly: one that is not valid UTF-8 is refused (NameNotUtf8), never followed as decoded with U+FFFD for each
        /// bad byte, which names another directory or nothing (a review).
        /// </summary>
        private static string ExactTarget(SafeFileDescriptor link, string at, string path)
        {
            byte[] bytes = Names.ReadSymbolicLinkBytes(link, string.Empty, at);
            return DirectoryListing.Exact(bytes) ?? throw new FileOperationException(
                FileErrorKind.NameNotUtf8,
                Libc.EILSEQ,
                "readlink",
                path,
                $"Cannot open '{path}': the symbolic link '{at}' leads to '{DirectoryListing.Escaped(bytes)}' (a byte that is not UTF-8 is written \\xNN), which is not valid UTF-8: no path here can follow it exactly. Give the path it leads to, renamed to UTF-8.");
        }

        /// <summary>A descriptor of its own for the same open directory (fcntl F_DUPFD_CLOEXEC).</summary>
        internal static SafeFileDescriptor Duplicate(SafeFileDescriptor dir, string path) => Files.Duplicate(dir, path, "Cannot open the directory of");
    }
}
