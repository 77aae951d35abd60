namespace Btrfs.Core
{
    using System;
    using System.Globalization;
    using System.IO;
    using System.Runtime.InteropServices;
    using System.Text;
    using System.Text.RegularExpressions;
    using Btrfs.Interop;

    /// <summary>
    /// A new file in a directory that has no name until it is complete: O_TMPFILE (a crash leaves
    /// nothing), or on filesystems without it a hidden name, ".&lt;name&gt;.~btrfs-&lt;pid&gt;-&lt;8 hex&gt;",
    /// that Dispose removes unless the file was put in place, and that <see cref="RemoveStale"/>
    /// removes after a run that was killed.
    /// </summary>
    internal sealed partial class TemporaryFile : IDisposable
    {
        /// <summary>What every hidden temporary name contains.</summary>
        internal const string Marker = ".~btrfs-";

        private readonly SafeFileDescriptor dir;
        private string? linkedName;
        private bool committed;

        private TemporaryFile(SafeFileDescriptor dir, SafeFileDescriptor handle, string? linkedName)
        {
            this.dir = dir;
            Handle = handle;
            this.linkedName = linkedName;
        }

        internal SafeFileDescriptor Handle { get; }

        /// <summary>
        /// Creates the file in the open directory <paramref name="dir"/>; <paramref name="name"/> is the
        /// name it will get. <paramref name="mode"/> (the umask applies) defaults to 0600.
        /// </summary>
        internal static TemporaryFile Create(SafeFileDescriptor dir, string dirPath, string name, bool forceNamed, int mode = 0x180)
        {
            if (!forceNamed)
            {
                SafeFileDescriptor fd = Libc.OpenAt(dir, ".", Libc.O_TMPFILE | Libc.O_RDWR | Libc.O_CLOEXEC, mode);
                if (!fd.IsInvalid)
                {
                    return new TemporaryFile(dir, fd, null);
                }

                int errno = Marshal.GetLastPInvokeError();
                fd.Dispose();
                if (errno is not (Libc.EOPNOTSUPP or Libc.EISDIR or Libc.EINVAL))
                {
                    throw CreateFailure(errno, dirPath, name);
                }
            }

            string hidden = HiddenName(name);
            SafeFileDescriptor named = Libc.OpenAt(dir, hidden, Libc.O_CREAT | Libc.O_EXCL | Libc.O_RDWR | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, mode);
            if (named.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                named.Dispose();
                throw CreateFailure(errno, dirPath, name);
            }

            return new TemporaryFile(dir, named, hidden);
        }

        /// <summary>Gives the file a hidden name (if it has none yet) and renames it over <paramref name="name"/>, atomically.</summary>
        internal void LinkAndReplace(string name, string path)
        {
            EnsureLinked(name, path);
            if (Libc.RenameAt(dir, linkedName!, dir, name) != 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "renameat", path, "Cannot put the new file in place of", "The original is unchanged.");
            }

            committed = true;
        }

        /// <summary>Gives the file the name <paramref name="name"/>, which must not exist (EEXIST otherwise: nothing is overwritten).</summary>
        internal void LinkAsNew(string name, string path)
        {
            int errno = Link(name); // fails with EEXIST if the name exists: nothing is overwritten
            if (errno != 0)
            {
                throw LinkFailure(errno, path);
            }

            if (linkedName is null)
            {
                committed = true;
                return;
            }

            // It had a hidden name as well: drop that one.

            committed = true;
            _ = Libc.UnlinkAt(dir, linkedName, 0);
        }

        public void Dispose()
        {
            if (!committed && linkedName is not null)
            {
                _ = Libc.UnlinkAt(dir, linkedName, 0);
            }

            Handle.Dispose();
        }

        /// <summary>Removes hidden temporary files left in the directory by runs whose process no longer exists.</summary>
        internal static int RemoveStale(SafeFileDescriptor dir, string dirPath)
        {
            int removed = 0;
            string[] names;
            try
            {
                names = Directory.GetFiles(dirPath, "." + "*" + Marker + "*");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return 0;
            }

            foreach (string path in names)
            {
                string file = Path.GetFileName(path);
                Match m = TemporaryName().Match(file);
                if (!m.Success || Directory.Exists("/proc/" + m.Groups["pid"].Value))
                {
                    continue;
                }

                if (Libc.StatXAt(dir, file, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_TYPE, out Libc.StatX st) == 0
                    && (st.Mode & Libc.S_IFMT) == Libc.S_IFREG
                    && Libc.UnlinkAt(dir, file, 0) == 0)
                {
                    removed++;
                }
            }

            return removed;
        }

        private string SelfPath() => "/proc/self/fd/" + Handle.Fd.ToString(CultureInfo.InvariantCulture);

        /// <summary>linkat of the descriptor itself: AT_EMPTY_PATH where allowed (CAP_DAC_READ_SEARCH), else through /proc/self/fd.</summary>
        private int Link(string newName)
        {
            if (Libc.LinkAtFd(Handle, string.Empty, dir, newName, Libc.AT_EMPTY_PATH) == 0)
            {
                return 0;
            }

            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (errno is not (Libc.ENOENT or Libc.EPERM or Libc.EINVAL))
            {
                return errno;
            }

            return Libc.LinkAt(Libc.AT_FDCWD, SelfPath(), dir, newName, Libc.AT_SYMLINK_FOLLOW) == 0 ? 0 : System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        }

        private void EnsureLinked(string name, string path)
        {
            if (linkedName is not null)
            {
                return;
            }

            string hidden = HiddenName(name);
            int errno = Link(hidden);
            if (errno != 0)
            {
                throw FileOperationException.FromErrno(errno, "linkat", path, "Cannot give the new file a name next to", "The original is unchanged.");
            }

            linkedName = hidden;
        }

        private static FileOperationException LinkFailure(int errno, string path) =>
            errno == Libc.EEXIST
                ? new FileOperationException(FileErrorKind.AlreadyExists, errno, "linkat", path, $"Cannot create '{path}': a file of that name appeared meanwhile. It was left as it is; the new file was discarded.")
                : FileOperationException.FromErrno(errno, "linkat", path, "Cannot create", "Nothing was left behind.");

        private static string HiddenName(string name)
        {
            // NAME_MAX is 255 bytes: keep a recognizable prefix of the name.
            string prefix = name;
            while (Encoding.UTF8.GetByteCount(prefix) > 200)
            {
                prefix = prefix[..^1];
            }

            string pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            string rand = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
            return "." + prefix + Marker + pid + "-" + rand;
        }

        private static FileOperationException CreateFailure(int errno, string dirPath, string name) =>
            FileOperationException.FromErrno(
                errno,
                "open(O_TMPFILE)",
                Path.Combine(dirPath, name),
                "Cannot create a new file next to",
                errno is Libc.EACCES or Libc.EPERM ? "Writing into its directory needs write permission there. Nothing was changed." : "Nothing was changed.");

        [GeneratedRegex(@"^\..*\.~btrfs-(?<pid>\d+)-[0-9a-f]{8}$", RegexOptions.CultureInvariant)]
        private static partial Regex TemporaryName();
    }
}
