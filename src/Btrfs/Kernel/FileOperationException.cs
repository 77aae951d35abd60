namespace Btrfs.Core
{
    using System;
    using System.IO;
    using Btrfs.Interop;

    /// <summary>
    /// A failed operation on one file: carries the errno (0 when the failure was detected without a
    /// system call), the operation, the path and a classification that callers map to their own
    /// error reporting.
    /// </summary>
    public sealed class FileOperationException : IOException
    {
        /// <summary>Creates the exception with a complete, user-facing message.</summary>
        public FileOperationException(FileErrorKind kind, int errno, string operation, string path, string message, Exception? inner = null)
            : base(message, inner)
        {
            Kind = kind;
            Errno = errno;
            Operation = operation;
            Path = path;
            HResult = errno;
        }

        /// <summary>What went wrong.</summary>
        public FileErrorKind Kind { get; }

        /// <summary>The errno of the failing system call, or 0.</summary>
        public int Errno { get; }

        /// <summary>The errno's symbolic name ("ENOENT"), or an empty string when <see cref="Errno"/> is 0.</summary>
        public string ErrnoName => Errno == 0 ? string.Empty : Libc.ErrnoName(Errno);

        /// <summary>The operation that failed ("open", "FS_IOC_FIEMAP", ...).</summary>
        public string Operation { get; }

        /// <summary>The file the operation was about.</summary>
        public string Path { get; }

        /// <summary>
        /// The kernel refused a call that needs root (CAP_SYS_ADMIN) whatever the file: the same call on any
        /// other file is refused the same way.
        /// </summary>
        public bool NeedsRoot { get; internal set; }

        /// <summary>
        /// The refusal is the filesystem's, not the file's (only btrfs has extent items, NOCOW): every other file
        /// on the same filesystem is refused the same way.
        /// </summary>
        public bool SameForFileSystem { get; internal set; }

        /// <summary>The system's text for an errno ("No space left on device").</summary>
        internal static string Describe(int errno) => Libc.StrError(errno);

        /// <summary>What ETXTBSY means, and what to do.</summary>
        private const string TextBusy = "The kernel keeps it from being written: it is an active swapfile (swapoff it first) or the program of a running process (stop the process first).";

        /// <summary>
        /// What EAGAIN from opening a file (this module opens without waiting, O_NONBLOCK) means: another process
        /// holds a lease on it, and the kernel has asked it to give the lease up.
        /// </summary>
        private const string Leased = "It cannot be opened without waiting: most likely another process holds a lease on it (a file server's oplock or delegation, or a tool that replaces the file and guards it meanwhile, such as this module in another session), and the kernel has asked the holder to give the lease up. Try again in a moment.";

        /// <summary>
        /// What ran out, for ENOSPC or EDQUOT (both InsufficientSpace): "the filesystem has no room" or a quota's limit
        /// (a btrfs qgroup limit, or a user's or group's quota), where free space would not help (before: "the filesystem
        /// has no room: free some space" where df showed 1.3 GB free; a hostile test).
        /// </summary>
        internal static string NoRoom(int errno) => errno == Libc.EDQUOT
            ? "A quota has no room left for it (a btrfs qgroup limit on its subvolume, or this user's or group's disk quota): raise the limit"
            : "The filesystem has no room for it: free some space";

        /// <summary>How an errno value is classified.</summary>
        internal static FileErrorKind KindOf(int errno) => errno switch
        {
            Libc.ENOENT or Libc.ENOTDIR => FileErrorKind.NotFound,
            Libc.ELOOP => FileErrorKind.SymbolicLinkLoop,
            Libc.EISDIR => FileErrorKind.IsDirectory,
            Libc.EACCES or Libc.EPERM => FileErrorKind.AccessDenied,
            Libc.EOPNOTSUPP or Libc.ENOTTY or Libc.EBADR => FileErrorKind.NotSupported,
            Libc.EINVAL or Libc.ENAMETOOLONG or Libc.EFBIG => FileErrorKind.InvalidArgument,
            Libc.EROFS => FileErrorKind.ReadOnlyFileSystem,
            Libc.ETXTBSY or Libc.EBUSY => FileErrorKind.InUse,
            Libc.ENOSPC or Libc.EDQUOT => FileErrorKind.InsufficientSpace,
            _ => FileErrorKind.IOError,
        };

        /// <summary>
        /// <paramref name="ex"/>, from looking up or opening <paramref name="path"/>, a name listed before (by a walk,
        /// a search): where that name (or a directory on its way) leads nowhere now, or to a link or another kind of
        /// file, it is what happened since, a ChangedSinceListed error that says so and <paramref name="then"/> ("check
        /// the path" would send the user looking for a mistake of theirs); any other error is handed back as it is.
        /// </summary>
        internal static FileOperationException SinceListed(FileOperationException ex, string path, string then) =>
            (ex.Path == path || (ex.Path.Length > 1 && path.StartsWith(ex.Path.TrimEnd('/') + "/", StringComparison.Ordinal)))
                && ((ex.Operation is "open" or "openat" or "stat" or "statx"
                        && ex.Kind is FileErrorKind.NotFound or FileErrorKind.SymbolicLinkLoop or FileErrorKind.IsSymbolicLink or FileErrorKind.NotRegularFile or FileErrorKind.IsDirectory)
                    || (ex.Operation == "readlinkat" && ex.Kind is FileErrorKind.NotFound or FileErrorKind.InvalidArgument)) // a listed link gone, or no link any more (EINVAL)
                ? new FileOperationException(FileErrorKind.ChangedSinceListed, ex.Errno, ex.Operation, path, $"Skipped '{path}': it was removed or renamed after it was listed (its name leads nowhere now, or to a link or something other than what was listed). {then}", ex)
                : ex;

        /// <summary>
        /// Builds the exception for a failed system call, classifying errno. <paramref name="what"/>
        /// says what was being attempted ("Cannot open"), <paramref name="advice"/> what to do about
        /// it; when null a default for the classification is used.
        /// </summary>
        internal static FileOperationException FromErrno(int errno, string operation, string path, string what, string? advice = null)
        {
            bool leased = errno == Libc.EAGAIN && operation is "open" or "openat" or "open(O_RDWR)"; // opens of an existing file, all O_NONBLOCK
            FileErrorKind kind = leased ? FileErrorKind.InUse : KindOf(errno);

            // ETXTBSY is not "another process": the kernel says it of an active swapfile (one this module did
            // not recognise as such) and of a running program's file. Said before the caller's own advice.
            string? given = advice;

            // Permission denied on the way (a directory this user may not enter) is not the file's own: say where.
            if (errno == Libc.EACCES && given is null && path.StartsWith('/') && Btrfs.Kernel.DirectoryHandle.FirstUnsearchable(path) is string blocked)
            {
                given = $"This user may not enter the directory '{blocked}' (no search permission), so nothing below it can be reached. Run as a user who can (or as root).";
            }

            advice = errno == Libc.ETXTBSY || leased ? (leased ? Leased : TextBusy) + (given is { Length: > 0 } ? " " + given : string.Empty) : given ?? kind switch
            {
                FileErrorKind.NotFound => "Check the path.",
                FileErrorKind.SymbolicLinkLoop => "Fix the symbolic links in the path.",
                FileErrorKind.IsDirectory => "Pass a regular file.",
                FileErrorKind.AccessDenied => what.Contains("writ", StringComparison.Ordinal) ? "Run as a user who can write to the file (or as root)." : "Run as a user who can read the file (or as root).",
                FileErrorKind.InvalidArgument when errno == Libc.ENAMETOOLONG => "The kernel takes a path of at most 4,095 bytes and a name of at most 255: move (or rename) it to a shorter path.",
                FileErrorKind.InvalidArgument => "Check the arguments.",
                FileErrorKind.InsufficientSpace => NoRoom(errno) + ", and try again.",
                FileErrorKind.ReadOnlyFileSystem => "The filesystem (or snapshot) is read-only; nothing can be changed there.",
                FileErrorKind.InUse => "Another process is using the file; try again when it is done.",
                _ => string.Empty,
            };
            string message = $"{what} '{path}': {Libc.StrError(errno)} ({operation}: {Libc.ErrnoName(errno)}).";
            if (advice.Length > 0)
            {
                message += " " + advice;
            }

            return new FileOperationException(kind, errno, operation, path, message);
        }
    }
}
