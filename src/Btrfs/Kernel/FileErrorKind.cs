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

        /// <summary>The path is a symbolic link where the operation will not follow one (write paths).</summary>
        IsSymbolicLink,

        /// <summary>The file is immutable (chattr +i).</summary>
        Immutable,

        /// <summary>The file is append-only (chattr +a).</summary>
        AppendOnly,

        /// <summary>The filesystem is mounted read-only.</summary>
        ReadOnlyFileSystem,

        /// <summary>The file lives in a read-only btrfs snapshot or subvolume.</summary>
        ReadOnlySnapshot,

        /// <summary>Another process has the file open or mapped.</summary>
        InUse,

        /// <summary>Whether another process has the file open cannot be proven (no write lease: not the owner, or leases disabled).</summary>
        InUseUnknown,

        /// <summary>The file has more than one hard link, and replacing this name would split them.</summary>
        HardLinks,

        /// <summary>Not enough free space (checked first, or ENOSPC during the work).</summary>
        InsufficientSpace,

        /// <summary>The file changed while it was being copied.</summary>
        ChangedDuringCopy,

        /// <summary>The file is an active swapfile (listed in /proc/swaps).</summary>
        ActiveSwapfile,

        /// <summary>The copy did not read back identical to the original.</summary>
        VerificationFailed,

        /// <summary>The filesystem has no NOCOW attribute (only btrfs has it).</summary>
        NoCowNotSupported,

        /// <summary>NOCOW can only be changed on an empty file (btrfs ignores it on others).</summary>
        NoCowRequiresEmptyFile,

        /// <summary>NOCOW and the compression attribute exclude each other.</summary>
        NoCowConflictsWithCompression,

        /// <summary>The kernel accepted the change but the flag, read back, is not as asked.</summary>
        NoCowNotApplied,

        /// <summary>The destination exists and may not be replaced (or appeared meanwhile).</summary>
        AlreadyExists,

        /// <summary>Source and destination are the same file.</summary>
        SameFile,

        /// <summary>A tree's destination lies inside the tree itself.</summary>
        DestinationInsideSource,

        /// <summary>Source and destination are on different filesystems (EXDEV).</summary>
        CrossFileSystem,

        /// <summary>The filesystem cannot share extents (no reflink).</summary>
        ReflinkNotSupported,

        /// <summary>btrfs: one side is NOCOW (no checksums), the other not: they cannot share extents.</summary>
        ChecksumClassMismatch,

        /// <summary>There is no data extent where one was asked for (a hole, inline data, or a free address).</summary>
        ExtentNotFound,

        /// <summary>A path that must be a btrfs subvolume's root directory is not one.</summary>
        NotASubvolume,

        /// <summary>A subvolume is in use: mounted, the default, or holding an active swapfile.</summary>
        SubvolumeInUse,

        /// <summary>A subvolume holds nested subvolumes (deleting it needs -Recurse).</summary>
        SubvolumeHasNested,

        /// <summary>A snapshot's source and destination are on different filesystems.</summary>
        SnapshotAcrossFileSystems,

        /// <summary>The filesystem committed again and again while its trees were being read, so no consistent reading was had.</summary>
        FileSystemKeptChanging,

        /// <summary>A database file of the module (Find-BtrfsDuplicate -HashFile, Invoke-BtrfsDefrag -StatePath) is not a readable SQLite database, or its contents are damaged.</summary>
        DatabaseCorrupt,

        /// <summary>A database file is a SQLite database, but not one of this module (another application's, or another kind).</summary>
        DatabaseNotOurs,

        /// <summary>A database file was written by a newer version of the module, in a format this version does not know.</summary>
        DatabaseNewerVersion,

        /// <summary>A file the module would write by name lies in a directory another user can change (write to it, or replace it): refused before anything is created.</summary>
        UnsafeDirectory,

        /// <summary>No mount reaches the subvolume (an object of Get-BtrfsSubvolume -All with no Path).</summary>
        SubvolumeNotReachable,

        /// <summary>A subvolume object's path now leads to another subvolume (renamed, replaced or mounted over since it was listed).</summary>
        SubvolumeReplaced,

        /// <summary>The empty directory a btrfs snapshot shows in place of a nested subvolume of its source: it holds nothing and takes no change.</summary>
        SubvolumePlaceholder,

        /// <summary>A confirmation was needed and the PowerShell host cannot prompt (its input is closed, or it runs -NonInteractive): nothing was done.</summary>
        ConfirmationNotPossible,

        /// <summary>A file a walk (or a search) listed is not there when its turn comes: removed, renamed, or its name now a link or something other than a file.</summary>
        ChangedSinceListed,

        /// <summary>A name in a directory is not valid UTF-8: no .NET string, so no path, can name it; passed over.</summary>
        NameNotUtf8,

        /// <summary>A directory a walk reached is one of the directories above it (a bind mount of an ancestor): not entered.</summary>
        DirectoryLoop,
    }
}
