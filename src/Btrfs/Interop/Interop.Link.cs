namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>Directory entries: linkat(2), renameat(2), unlinkat(2), mkdirat(2), symlinkat(2), readlinkat(2), faccessat(2), realpath(3).</summary>
    internal static partial class Libc
    {
        internal const int R_OK = 4;

        internal const int W_OK = 2;

        /// <summary>faccessat mode: search (directories) or execute.</summary>
        internal const int X_OK = 1;

        /// <summary>faccessat flag: check with the effective (filesystem) credentials, not the real ones.</summary>
        internal const int AT_EACCESS = 0x200;

        [LibraryImport(Name, EntryPoint = "faccessat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int FAccessAt(int dirfd, string path, int mode, int flags);

        [LibraryImport(Name, EntryPoint = "faccessat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int FAccessAt(SafeFileDescriptor dirfd, string path, int mode, int flags);

        internal const int AT_SYMLINK_FOLLOW = 0x400;
        internal const int AT_REMOVEDIR = 0x200;

        [LibraryImport(Name, EntryPoint = "linkat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int LinkAt(int olddirfd, string oldpath, SafeFileDescriptor newdirfd, string newpath, int flags);

        /// <summary>linkat(fd, "", newdirfd, newpath, AT_EMPTY_PATH): a name for an open (O_TMPFILE) file; needs CAP_DAC_READ_SEARCH.</summary>
        [LibraryImport(Name, EntryPoint = "linkat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int LinkAtFd(SafeFileDescriptor oldfd, string oldpath, SafeFileDescriptor newdirfd, string newpath, int flags);

        [LibraryImport(Name, EntryPoint = "renameat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int RenameAt(SafeFileDescriptor olddirfd, string oldpath, SafeFileDescriptor newdirfd, string newpath);

        [LibraryImport(Name, EntryPoint = "unlinkat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int UnlinkAt(SafeFileDescriptor dirfd, string path, int flags);

        /// <summary>mkdirat(2): a directory in an open directory.</summary>
        [LibraryImport(Name, EntryPoint = "mkdirat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int MkDirAt(SafeFileDescriptor dirfd, string path, uint mode);

        /// <summary>symlinkat(2): a symbolic link holding the target's bytes as they are (NUL-terminated by the caller), in an open directory: a target that is not UTF-8 kept exactly.</summary>
        [LibraryImport(Name, EntryPoint = "symlinkat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static unsafe partial int SymlinkAtBytes(byte* target, SafeFileDescriptor newdirfd, string linkpath);

        /// <summary>readlinkat(2): the bytes of a symbolic link in an open directory (not NUL-terminated).</summary>
        [LibraryImport(Name, EntryPoint = "readlinkat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static unsafe partial nint ReadLinkAt(SafeFileDescriptor dirfd, string path, byte* buf, nuint size);

        /// <summary>realpath(path, NULL): the canonical path (symbolic links resolved), or null with errno set.</summary>
        internal static unsafe string? RealPath(string path)
        {
            byte* p = RealPathRaw(path, null);
            if (p == null)
            {
                return null;
            }

            try
            {
                return Marshal.PtrToStringUTF8((nint)p);
            }
            finally
            {
                Free(p);
            }
        }

        [LibraryImport(Name, EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        private static unsafe partial byte* RealPathRaw(string path, byte* resolved);

        [LibraryImport(Name, EntryPoint = "free")]
        private static unsafe partial void Free(void* p);
    }
}
