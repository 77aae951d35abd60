namespace Btrfs.Commands
{
    using System;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>The one mapping from Core failures to ErrorRecords: stable ids, categories, the path as target.</summary>
    internal static class ErrorRecords
    {
        /// <summary>Error ids users and tests can rely on (the part before the comma of FullyQualifiedErrorId).</summary>
        internal static class Ids
        {
            internal const string PathNotFound = "PathNotFound";
            internal const string InvalidWildcardPattern = "InvalidWildcardPattern";
            internal const string DanglingSymbolicLink = "DanglingSymbolicLink";
            internal const string SymbolicLinkLoop = "SymbolicLinkLoop";
            internal const string DirectoryLoop = "DirectoryLoop";
            internal const string PathIsDirectory = "PathIsDirectory";
            internal const string NotRegularFile = "NotRegularFile";
            internal const string AccessDenied = "AccessDenied";
            internal const string OperationNotSupported = "OperationNotSupported";
            internal const string InvalidArgument = "InvalidArgument";
            internal const string IOError = "IOError";
            internal const string NotFileSystemPath = "NotFileSystemPath";
            internal const string AmbiguousBackslashPath = "AmbiguousBackslashPath";
            internal const string AmbiguousParentPath = "AmbiguousParentPath";
            internal const string ObjectNamesNoFile = "ObjectNamesNoFile";
            internal const string PathIsSymbolicLink = "PathIsSymbolicLink";
            internal const string FileIsImmutable = "FileIsImmutable";
            internal const string FileIsAppendOnly = "FileIsAppendOnly";
            internal const string ReadOnlyFileSystem = "ReadOnlyFileSystem";
            internal const string ReadOnlySnapshot = "ReadOnlySnapshot";
            internal const string FileInUse = "FileInUse";
            internal const string InUseUnknown = "InUseUnknown";
            internal const string FileHasHardLinks = "FileHasHardLinks";
            internal const string InsufficientSpace = "InsufficientSpace";
            internal const string FileChangedDuringCopy = "FileChangedDuringCopy";
            internal const string FileChangedSinceListed = "FileChangedSinceListed";
            internal const string NameNotUtf8 = "NameNotUtf8";
            internal const string FileSystemKeptChanging = "FileSystemKeptChanging";
            internal const string FileIsActiveSwapfile = "FileIsActiveSwapfile";
            internal const string CopyVerificationFailed = "CopyVerificationFailed";
            internal const string NoCowNotSupported = "NoCowNotSupported";
            internal const string NoCowRequiresEmptyFile = "NoCowRequiresEmptyFile";
            internal const string NoCowConflictsWithCompression = "NoCowConflictsWithCompression";
            internal const string NoCowNotApplied = "NoCowNotApplied";
            internal const string DestinationExists = "DestinationExists";
            internal const string SourceIsDestination = "SourceIsDestination";
            internal const string DestinationInsideSource = "DestinationInsideSource";
            internal const string ReflinkAcrossFileSystems = "ReflinkAcrossFileSystems";
            internal const string ReflinkNotSupported = "ReflinkNotSupported";
            internal const string ReflinkChecksumClassMismatch = "ReflinkChecksumClassMismatch";
            internal const string ExtentNotFound = "ExtentNotFound";
            internal const string NotASubvolume = "NotASubvolume";
            internal const string SubvolumeInUse = "SubvolumeInUse";
            internal const string SubvolumeHasNested = "SubvolumeHasNested";
            internal const string SubvolumeNotReachable = "SubvolumeNotReachable";
            internal const string SubvolumeReplaced = "SubvolumeReplaced";
            internal const string SubvolumePlaceholder = "SubvolumePlaceholder";
            internal const string SnapshotAcrossFileSystems = "SnapshotAcrossFileSystems";
            internal const string DatabaseCorrupt = "DatabaseCorrupt";
            internal const string DatabaseNotOurs = "DatabaseNotOurs";
            internal const string UnsafeDirectory = "UnsafeDirectory";
            internal const string DestinationNotADirectory = "DestinationNotADirectory";
            internal const string NotADirectory = "NotADirectory";
            internal const string DatabaseNewerVersion = "DatabaseNewerVersion";
            internal const string ConfirmationNotPossible = "ConfirmationNotPossible";
        }

        /// <summary>The id and category of each kind of failure.</summary>
        internal static (string Id, ErrorCategory Category) Classify(FileErrorKind kind) => kind switch
        {
            FileErrorKind.NotFound => (Ids.PathNotFound, ErrorCategory.ObjectNotFound),
            FileErrorKind.DanglingSymbolicLink => (Ids.DanglingSymbolicLink, ErrorCategory.ObjectNotFound),
            FileErrorKind.SymbolicLinkLoop => (Ids.SymbolicLinkLoop, ErrorCategory.InvalidArgument),
            FileErrorKind.DirectoryLoop => (Ids.DirectoryLoop, ErrorCategory.InvalidData),
            FileErrorKind.IsDirectory => (Ids.PathIsDirectory, ErrorCategory.InvalidArgument),
            FileErrorKind.NotRegularFile => (Ids.NotRegularFile, ErrorCategory.InvalidArgument),
            FileErrorKind.AccessDenied => (Ids.AccessDenied, ErrorCategory.PermissionDenied),
            FileErrorKind.NotSupported => (Ids.OperationNotSupported, ErrorCategory.NotImplemented),
            FileErrorKind.InvalidArgument => (Ids.InvalidArgument, ErrorCategory.InvalidArgument),
            FileErrorKind.IsSymbolicLink => (Ids.PathIsSymbolicLink, ErrorCategory.InvalidArgument),
            FileErrorKind.Immutable => (Ids.FileIsImmutable, ErrorCategory.PermissionDenied),
            FileErrorKind.AppendOnly => (Ids.FileIsAppendOnly, ErrorCategory.PermissionDenied),
            FileErrorKind.ReadOnlyFileSystem => (Ids.ReadOnlyFileSystem, ErrorCategory.PermissionDenied),
            FileErrorKind.ReadOnlySnapshot => (Ids.ReadOnlySnapshot, ErrorCategory.PermissionDenied),
            FileErrorKind.InUse => (Ids.FileInUse, ErrorCategory.ResourceBusy),
            FileErrorKind.InUseUnknown => (Ids.InUseUnknown, ErrorCategory.PermissionDenied),
            FileErrorKind.HardLinks => (Ids.FileHasHardLinks, ErrorCategory.InvalidOperation),
            FileErrorKind.InsufficientSpace => (Ids.InsufficientSpace, ErrorCategory.ResourceUnavailable),
            FileErrorKind.ChangedDuringCopy => (Ids.FileChangedDuringCopy, ErrorCategory.ResourceBusy),
            FileErrorKind.ChangedSinceListed => (Ids.FileChangedSinceListed, ErrorCategory.ObjectNotFound),
            FileErrorKind.NameNotUtf8 => (Ids.NameNotUtf8, ErrorCategory.InvalidData),
            FileErrorKind.ActiveSwapfile => (Ids.FileIsActiveSwapfile, ErrorCategory.ResourceBusy),
            FileErrorKind.VerificationFailed => (Ids.CopyVerificationFailed, ErrorCategory.WriteError),
            FileErrorKind.NoCowNotSupported => (Ids.NoCowNotSupported, ErrorCategory.NotImplemented),
            FileErrorKind.NoCowRequiresEmptyFile => (Ids.NoCowRequiresEmptyFile, ErrorCategory.InvalidOperation),
            FileErrorKind.NoCowConflictsWithCompression => (Ids.NoCowConflictsWithCompression, ErrorCategory.InvalidOperation),
            FileErrorKind.NoCowNotApplied => (Ids.NoCowNotApplied, ErrorCategory.WriteError),
            FileErrorKind.AlreadyExists => (Ids.DestinationExists, ErrorCategory.ResourceExists),
            FileErrorKind.SameFile => (Ids.SourceIsDestination, ErrorCategory.InvalidArgument),
            FileErrorKind.DestinationInsideSource => (Ids.DestinationInsideSource, ErrorCategory.InvalidArgument),
            FileErrorKind.CrossFileSystem => (Ids.ReflinkAcrossFileSystems, ErrorCategory.InvalidOperation),
            FileErrorKind.ReflinkNotSupported => (Ids.ReflinkNotSupported, ErrorCategory.NotImplemented),
            FileErrorKind.ChecksumClassMismatch => (Ids.ReflinkChecksumClassMismatch, ErrorCategory.InvalidOperation),
            FileErrorKind.ExtentNotFound => (Ids.ExtentNotFound, ErrorCategory.ObjectNotFound),
            FileErrorKind.NotASubvolume => (Ids.NotASubvolume, ErrorCategory.InvalidArgument),
            FileErrorKind.SubvolumeInUse => (Ids.SubvolumeInUse, ErrorCategory.ResourceBusy),
            FileErrorKind.SubvolumeHasNested => (Ids.SubvolumeHasNested, ErrorCategory.InvalidOperation),
            FileErrorKind.SubvolumeNotReachable => (Ids.SubvolumeNotReachable, ErrorCategory.ObjectNotFound),
            FileErrorKind.SubvolumeReplaced => (Ids.SubvolumeReplaced, ErrorCategory.InvalidOperation),
            FileErrorKind.SubvolumePlaceholder => (Ids.SubvolumePlaceholder, ErrorCategory.InvalidArgument),
            FileErrorKind.SnapshotAcrossFileSystems => (Ids.SnapshotAcrossFileSystems, ErrorCategory.InvalidOperation),
            FileErrorKind.FileSystemKeptChanging => (Ids.FileSystemKeptChanging, ErrorCategory.ResourceBusy),
            FileErrorKind.DatabaseCorrupt => (Ids.DatabaseCorrupt, ErrorCategory.InvalidData),
            FileErrorKind.DatabaseNotOurs => (Ids.DatabaseNotOurs, ErrorCategory.InvalidData),
            FileErrorKind.DatabaseNewerVersion => (Ids.DatabaseNewerVersion, ErrorCategory.InvalidData),
            FileErrorKind.UnsafeDirectory => (Ids.UnsafeDirectory, ErrorCategory.SecurityError),
            FileErrorKind.ConfirmationNotPossible => (Ids.ConfirmationNotPossible, ErrorCategory.InvalidOperation),
            _ => (Ids.IOError, ErrorCategory.ReadError),
        };

        /// <summary>Builds the record for a failed operation on one file.</summary>
        internal static ErrorRecord From(FileOperationException ex) => From(ex, ex.Path);

        /// <summary>The same, with <paramref name="target"/> (the path as the user gave it, or the id or object given) as the target object where the message names another (a parent that is missing, a nested subvolume).</summary>
        internal static ErrorRecord From(FileOperationException ex, object target)
        {
            (string id, ErrorCategory category) = Classify(ex.Kind);
            return new ErrorRecord(ex, id, category, target);
        }

        /// <summary>Parameters given together that exclude each other (or one given without the one it needs): a terminating error before any file is touched.</summary>
        internal static ErrorRecord ConflictingParameters(string id, string message) =>
            new(new PSArgumentException(message), id, ErrorCategory.InvalidArgument, null);

        /// <summary>A wildcard pattern that matches no file.</summary>
        internal static ErrorRecord NoMatch(string pattern, string advice = "Check the pattern, or use -LiteralPath if the name itself contains wildcard characters such as '[' or '*'.") =>
            new(
                new ItemNotFoundException($"No file matches '{pattern}'. {advice}"),
                Ids.PathNotFound,
                ErrorCategory.ObjectNotFound,
                pattern);

        /// <summary>A path holding a NUL character, which no file name can hold (the kernel would read it only up to there).</summary>
        internal static ErrorRecord NulInPath(string path) =>
            new(
                new PSArgumentException($"Cannot use the path '{path.Replace('\0', '?')}': it holds a NUL character, which no file name can hold (the kernel would read the path only up to it, and reach another file)."),
                Ids.InvalidArgument,
                ErrorCategory.InvalidArgument,
                path);

        /// <summary>A path ending in '/' (or '/.') that leads to something other than a directory: the kernel refuses it (ENOTDIR).</summary>
        internal static ErrorRecord NotADirectory(string given, string resolved) =>
            new(
                new System.IO.IOException($"Cannot use '{given}': a path ending in '/' or '/.' names a directory, and '{resolved}' is not one (the kernel refuses such a path: ENOTDIR). Leave out the ending to name the file."),
                Ids.NotADirectory,
                ErrorCategory.InvalidArgument,
                given);

        /// <summary>A -Path that is not a valid wildcard pattern ('names/[x': a '[' never closed): this input's error, the next input goes on.</summary>
        internal static ErrorRecord InvalidPattern(string pattern, Exception ex) =>
            new(
                new ArgumentException($"Cannot resolve '{pattern}': it is not a valid wildcard pattern ({ex.Message.TrimEnd('.')}). Use -LiteralPath for a name that itself contains '[', ']', '*' or '?', or write a backtick before each of them (\"x`[1`]\" for x[1]).", ex),
                Ids.InvalidWildcardPattern,
                ErrorCategory.InvalidArgument,
                pattern);

        /// <summary>A path of a provider other than FileSystem (Env:, Function:, ...).</summary>
        internal static ErrorRecord NotFileSystemPath(string path, string providerName) =>
            new(
                new ArgumentException($"Cannot use '{path}': it belongs to the {providerName} provider, not to the file system. Pass a file system path."),
                Ids.NotFileSystemPath,
                ErrorCategory.InvalidArgument,
                path);

        /// <summary>A plain path with a backslash that names one thing as written and another as PowerShell reads it (<see cref="PathBinding.Unambiguous"/>).</summary>
        internal static ErrorRecord AmbiguousBackslashPath(string given, string literal, string? resolved) =>
            new(
                new ArgumentException(
                    $"Cannot tell which file '{given}' means: '{literal}' has a backslash in its name, but PowerShell reads a backslash as a separator, "
                    + (resolved is null ? "which leads elsewhere" : FileStatus.OfPath(resolved, followLinks: false) is null ? $"which leads to '{resolved}', where nothing is" : $"which leads to '{resolved}'") + ". Nothing was changed. To mean the name with the backslash, pipe the object that carries it, or give "
                    + $"'{PathBinding.FileSystemPrefix}{literal}'; to mean the other, write '/' instead of the backslash."),
                Ids.AmbiguousBackslashPath,
                ErrorCategory.InvalidArgument,
                given);

        /// <summary>An object of this module that names no file, bound to a path parameter by value (<see cref="PipedPathAttribute.NamesNoFile"/>).</summary>
        internal static ErrorRecord ObjectNamesNoFile(string text, string type) =>
            new(
                new ArgumentException($"Cannot take a {type} as a path: it names no file a path can reach (a summary, a total, a legend line, or something no mount reaches), and its text '{text}' would be read as a file name. Nothing was done with it. Pipe the objects that name files, or pick the path you mean (ForEach-Object Path); a subvolume no mount reaches is named by -Id and -FileSystemPath."),
                Ids.ObjectNamesNoFile,
                ErrorCategory.InvalidArgument,
                text);

        /// <summary>A path whose '..' PowerShell reads by the text and the kernel from where a link leads, or not at all (<see cref="PathBinding.ParentAmbiguity"/>).</summary>
        internal static ErrorRecord AmbiguousParentPath(string given, string? asWritten, string textual, bool kernelFindsNothing) =>
            new(
                new ArgumentException(
                    (asWritten is null
                        ? $"Cannot tell which files '{given}' means: PowerShell takes its '..' away with the name before it by the text, before the wildcard is matched, where the kernel would go up from each match (and from nothing where nothing matches)"
                        : $"Cannot tell which file '{given}' means: PowerShell reads its '..' by the text, as '{textual}', but the kernel reads '..' from the directory a name leads to, and for the kernel '{asWritten}' "
                            + (kernelFindsNothing ? "leads nowhere (a name before the '..' does not exist, or is not a directory)" : "is another directory (a name before the '..', or the current location, is a symbolic link)"))
                    + ". Nothing was changed. Give the path without '..' (the directory you mean, as Resolve-Path or realpath shows it)."),
                Ids.AmbiguousParentPath,
                ErrorCategory.InvalidArgument,
                given);

        /// <summary>
        /// Any other failure PowerShell reported while resolving a path: a drive or provider that does
        /// not exist is PathNotFound, anything else InvalidArgument; the target is the path as given.
        /// </summary>
        internal static ErrorRecord FromResolution(string path, Exception ex) =>
            ex is DriveNotFoundException or ProviderNotFoundException
                ? new ErrorRecord(ex, Ids.PathNotFound, ErrorCategory.ObjectNotFound, path)
                : new ErrorRecord(ex, Ids.InvalidArgument, ErrorCategory.InvalidArgument, path);
    }
}
