namespace Btrfs.Core
{
    using System;
    using System.IO;
    using System.Runtime.InteropServices;
    using Btrfs.Interop;

    /// <summary>The parts of mirroring a tree that are not files: directories and symbolic links (never followed).</summary>
    public static class TreeCopy
    {
        /// <summary>Creates <paramref name="target"/> (if missing) with the permissions of the directory <paramref name="source"/>; true when it was created.</summary>
        public static bool MakeDirectoryLike(string source, string target)
        {
            bool existed = System.IO.Directory.Exists(target);
            FileStatus st = FileStatus.OfPath(source, followLinks: false) ?? throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "stat", source, "Cannot read");
            try
            {
                Directory.CreateDirectory(target, (UnixFileMode)(st.Permissions & 0x1FF));
                return !existed;
            }
            catch (IOException ex)
            {
                throw new FileOperationException(FileErrorKind.IOError, ex.HResult, "mkdir", target, $"Cannot create the directory '{target}': {ex.Message}");
            }
            catch (UnauthorizedAccessException ex)
            {
                throw new FileOperationException(FileErrorKind.AccessDenied, Libc.EACCES, "mkdir", target, $"Cannot create the directory '{target}': {ex.Message}");
            }
        }

        /// <summary>Gives the directory <paramref name="target"/> the mode, owner, group and times of <paramref name="source"/>.</summary>
        public static unsafe void PreserveDirectory(string source, string target)
        {
            FileStatus st = FileStatus.OfPath(source, followLinks: false) ?? throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "stat", source, "Cannot read");
            if (Libc.LChown(target, st.Uid, st.Gid) != 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "lchown", target, "Cannot give the owner of the source to");
            }

            File.SetUnixFileMode(target, (UnixFileMode)st.Permissions);
            SetTimes(target, st);
        }

        /// <summary>Recreates the symbolic link <paramref name="source"/> at <paramref name="target"/> (same target text, never followed).</summary>
        public static unsafe void CopySymbolicLink(string source, string target, bool replace, bool preserve)
        {
            string? linkTarget = new FileInfo(source).LinkTarget ?? throw new FileOperationException(FileErrorKind.IOError, 0, "readlink", source, $"Cannot read the symbolic link '{source}'.");
            if (replace && FileStatus.OfPath(target, followLinks: false) is { IsDirectory: false })
            {
                File.Delete(target);
            }

            try
            {
                File.CreateSymbolicLink(target, linkTarget);
            }
            catch (IOException ex)
            {
                throw new FileOperationException(FileErrorKind.IOError, ex.HResult, "symlink", target, $"Cannot create the symbolic link '{target}': {ex.Message}");
            }

            if (preserve && FileStatus.OfPath(source, followLinks: false) is FileStatus st)
            {
                _ = Libc.LChown(target, st.Uid, st.Gid);
                SetTimes(target, st);
            }
        }

        private static unsafe void SetTimes(string path, in FileStatus st)
        {
            Libc.TimeSpec* times = stackalloc Libc.TimeSpec[2];
            times[0] = new Libc.TimeSpec { Seconds = st.AccessTime.Seconds, Nanoseconds = st.AccessTime.Nanoseconds };
            times[1] = new Libc.TimeSpec { Seconds = st.ModifyTime.Seconds, Nanoseconds = st.ModifyTime.Nanoseconds };
            if (Libc.UtimensAt(Libc.AT_FDCWD, path, times, Libc.AT_SYMLINK_NOFOLLOW) != 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "utimensat", path, "Cannot set the times of");
            }
        }
    }
}
