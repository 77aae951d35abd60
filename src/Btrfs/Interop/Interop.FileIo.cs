namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>Data I/O on descriptors: pread/pwrite, lseek (SEEK_DATA/SEEK_HOLE), fsync, sync_file_range, ftruncate, posix_fadvise.</summary>
    internal static partial class Libc
    {
        internal const int SEEK_SET = 0;
        internal const int SEEK_END = 2;

        /// <summary>The next offset at or after the given one that holds data (ENXIO past the last data).</summary>
        internal const int SEEK_DATA = 3;

        /// <summary>The next hole at or after the given offset (EOF counts as a hole).</summary>
        internal const int SEEK_HOLE = 4;

        internal const int POSIX_FADV_SEQUENTIAL = 2;
        internal const int POSIX_FADV_WILLNEED = 3;
        internal const int POSIX_FADV_DONTNEED = 4;

        [LibraryImport(Name, EntryPoint = "pread64", SetLastError = true)]
        internal static unsafe partial nint PRead(SafeFileDescriptor fd, byte* buf, nuint count, long offset);

        [LibraryImport(Name, EntryPoint = "pwrite64", SetLastError = true)]
        internal static unsafe partial nint PWrite(SafeFileDescriptor fd, byte* buf, nuint count, long offset);

        [LibraryImport(Name, EntryPoint = "lseek64", SetLastError = true)]
        internal static partial long LSeek(SafeFileDescriptor fd, long offset, int whence);

        /// <summary>syncfs(2): writes back everything of the filesystem the descriptor is on.</summary>
        [LibraryImport(Name, EntryPoint = "syncfs", SetLastError = true)]
        internal static partial int SyncFs(SafeFileDescriptor fd);

        /// <summary>sync_file_range flag: start writing back the range's dirty pages, without waiting.</summary>
        internal const uint SYNC_FILE_RANGE_WRITE = 2;

        [LibraryImport(Name, EntryPoint = "sync_file_range", SetLastError = true)]
        internal static partial int SyncFileRange(SafeFileDescriptor fd, long offset, long nbytes, uint flags);

        [LibraryImport(Name, EntryPoint = "fsync", SetLastError = true)]
        internal static partial int FSync(SafeFileDescriptor fd);

        /// <summary>fallocate mode: allocate without changing the file size.</summary>
        internal const int FALLOC_FL_KEEP_SIZE = 0x1;

        [LibraryImport(Name, EntryPoint = "fallocate64", SetLastError = true)]
        internal static partial int FAllocate(SafeFileDescriptor fd, int mode, long offset, long length);

        [LibraryImport(Name, EntryPoint = "ftruncate64", SetLastError = true)]
        internal static partial int FTruncate(SafeFileDescriptor fd, long length);

        /// <summary>posix_fadvise returns the error number instead of setting errno.</summary>
        [LibraryImport(Name, EntryPoint = "posix_fadvise64")]
        internal static partial int PosixFadvise(SafeFileDescriptor fd, long offset, long length, int advice);
    }
}
