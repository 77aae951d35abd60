namespace Btrfs.Core
{
    /// <summary>What went wrong with a file, independent of how a caller reports it.</summary>
    public enum FileErrorKind
    {
        /// <summary>Any other failure of a system call; see <see cref="FileOperationException.Errno"/>.</summary>
        IOError = 0,

        /// <summary>The path does not exist.</summary>
        NotFound,

        /// <summary>The path is a symbolic link whose target does not exist.</summary>
        DanglingSymbolicLink,

        /// <summary>Too many levels of symbolic links.</summary>
        SymbolicLinkLoop,

        /// <summary>The path is a directory where a regular file was needed.</summary>
        IsDirectory,

        /// <summary>The path is a FIFO, socket or device where a regular file was needed.</summary>
        NotRegularFile,

        /// <summary>Permission denied.</summary>
        AccessDenied,

        /// <summary>The filesystem does not support the operation.</summary>
        NotSupported,

        /// <summary>The request itself was invalid (bad range, name too long...).</summary>
        InvalidArgument,
    }
}
