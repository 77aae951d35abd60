namespace Btrfs.Kernel
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Runtime.InteropServices;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>What a directory entry is, from its d_type (or fstatat when the filesystem does not say).</summary>
    internal enum EntryType
    {
        File,
        Directory,
        SymbolicLink,
        Other,
    }

    /// <summary>
    /// A directory opened relative to its parent's descriptor, never through a symbolic link
    /// (O_DIRECTORY | O_NOFOLLOW), and listed through that same descriptor (readdir on a duplicate):
    /// its descriptor is handed out for every later step on its entries.
    /// </summary>
    internal sealed class DirectoryListing : IDisposable
    {
        private readonly SafeDirectoryStream stream;

        private DirectoryListing(string path, SafeFileDescriptor handle, SafeDirectoryStream stream, FileStatus status)
        {
            Path = path;
            Handle = handle;
            this.stream = stream;
            Status = status;
        }

        internal string Path { get; }

        /// <summary>The directory's descriptor (O_RDONLY | O_DIRECTORY).</summary>
        internal SafeFileDescriptor Handle { get; }

        internal FileStatus Status { get; }

        /// <summary>
        /// Opens <paramref name="name"/> in <paramref name="parent"/> for listing; null (and the error
        /// naming <paramref name="path"/>, with <paramref name="advice"/>) when it cannot be opened or
        /// listed, for example because it is no longer a directory (ELOOP, ENOTDIR).
        /// </summary>
        internal static DirectoryListing? TryOpen(SafeFileDescriptor parent, string name, string path, string advice, out FileOperationException? error)
        {
            error = null;
            const string what = "Cannot read the directory";
            SafeFileDescriptor fd = Libc.OpenAt(parent, name, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            if (fd.IsInvalid)
            {
                error = Errno.Failure("openat", path, what, advice);
                fd.Dispose();
                return null;
            }

            if (FileStatus.Of(fd) is not FileStatus st)
            {
                error = Errno.Failure("fstat", path, what, advice);
                fd.Dispose();
                return null;
            }

            SafeDirectoryStream? stream = OpenStream(fd);
            if (stream is null)
            {
                error = Errno.Failure("fdopendir", path, what, advice);
                fd.Dispose();
                return null;
            }

            return new DirectoryListing(path, fd, stream, st);
        }

        /// <summary>
        /// The names in an open directory (without "." and ".."), from the start, read through a new open
        /// file description of it (openat ".": a duplicate would share the read position with the caller's
        /// descriptor, so an earlier listing would leave nothing to read, and a walk listing the same
        /// directory would lose its place); empty when it cannot be listed.
        /// </summary>
        internal static List<string> Names(SafeFileDescriptor dir)
        {
            var names = new List<string>();
            using SafeFileDescriptor? own = Kernel.Names.TryOpenDirectory(dir, ".", noFollow: true, out _);
            using SafeDirectoryStream? stream = own is null ? null : OpenStream(own);
            while (stream is not null && ReadEntry(stream) is (string name, _, _, _))
            {
                names.Add(name);
            }

            return names;
        }

        /// <summary>
        /// The names in the directory <paramref name="path"/> (opened by path), nothing else: unlike .NET's
        /// listings, which stat what each symbolic link leads to (in /proc/PID/fd an open file of another process,
        /// perhaps on a mount that no longer answers, where the stat waits forever). Null with the errno when the
        /// directory cannot be opened (EACCES: another user's /proc entries).
        /// </summary>
        internal static List<string>? TryNames(string path, out int errno)
        {
            using SafeFileDescriptor? dir = DirectoryHandle.TryOpen(path, null, out FileOperationException? error);
            errno = error?.Errno ?? 0;
            return dir is null ? null : Names(dir);
        }

        /// <summary>
        /// The next entry ("." and ".." skipped), or null at the end; a read error ends the listing
        /// with <paramref name="error"/> set. Names that are not valid UTF-8 (a .NET string cannot hold them,
        /// so no path could name the file again) are passed over, and at the end of the listing
        /// <paramref name="error"/> names them all (NameNotUtf8): one error per directory, after its entries; those
        /// that <paramref name="wanted"/> (given the name decoded with U+FFFD for each byte that is not UTF-8, and its
        /// type) would not take anyway are passed over without a word (a name an -Exclude pattern leaves out: a hostile
        /// review).
        /// </summary>
        internal (string Name, EntryType Type, ulong Inode)? Next(out FileOperationException? error, Func<string, EntryType, bool>? wanted = null)
        {
            error = null;
            while (true)
            {
                Marshal.SetLastPInvokeError(0);
                if (ReadEntry(stream, strict: true) is not (string name, byte type, ulong inode, var notUtf8Name))
                {
                    error = Errno.Last != 0
                        ? Errno.Failure("readdir", Path, "Cannot read the directory", "The rest of it was skipped.")
                        : notUtf8 is null ? null : NotUtf8(notUtf8);
                    notUtf8 = null;
                    notUtf8Passed = 0;
                    return null;
                }

                if (notUtf8Name is not null)
                {
                    // (An unknown type is not looked up by the decoded name, which names another file or none: such a name is
                    // said whatever the patterns, since a directory's would be passed over with all below it; a review.)
                    if (wanted is not null && type != Libc.DT_UNKNOWN && !wanted(name, Classify(type, name)))
                    {
                        continue;
                    }

                    notUtf8 ??= new();
                    if (notUtf8.Count < MaxNamesSaid)
                    {
                        notUtf8.Add(notUtf8Name);
                    }

                    notUtf8Passed++;
                    continue;
                }

                return (name, Classify(type, name), inode);
            }
        }

        /// <summary>Lists the directory again from its start, as it is now (rewinddir).</summary>
        internal void Rewind()
        {
            Libc.RewindDir(stream);
            notUtf8 = null;
            notUtf8Passed = 0;
        }

        /// <summary>How many of the names passed over one error names (the rest are counted).</summary>
        private const int MaxNamesSaid = 10;

        /// <summary>The first names passed over so far because they are not valid UTF-8, and how many (said at the end of the listing).</summary>
        private List<string>? notUtf8;
        private int notUtf8Passed;

        private FileOperationException NotUtf8(List<string> names)
        {
            bool one = notUtf8Passed == 1;
            string more = notUtf8Passed > names.Count ? $" and {notUtf8Passed - names.Count} more" : string.Empty;
            return new(
                FileErrorKind.NameNotUtf8,
                Errno.EINVAL,
                "readdir",
                Path,
                $"Skipping {(one ? "a name" : $"{notUtf8Passed} names")} in '{Path}' that {(one ? "is" : "are")} not valid UTF-8 ({string.Join(", ", names.Select(n => $"'{n}'"))}{more}; a byte that is not UTF-8 is written \\xNN): no PowerShell path can name such a file, so it was left as it is. Rename {(one ? "it" : "them")} to UTF-8 (convmv -f latin1 -t utf8, or mv with the shell's $'\\xNN' quoting) to include {(one ? "it" : "them")}.");
        }

        public void Dispose()
        {
            stream.Dispose();
            Handle.Dispose();
        }

        /// <summary>fdopendir takes the descriptor it is given: it gets a duplicate, the original stays the caller's.</summary>
        private static SafeDirectoryStream? OpenStream(SafeFileDescriptor fd)
        {
            int dup = Libc.Fcntl(fd, Libc.F_DUPFD_CLOEXEC, 0);
            if (dup < 0)
            {
                return null;
            }

            SafeDirectoryStream stream = Libc.FdOpenDir(dup);
            if (stream.IsInvalid)
            {
                int errno = Errno.Last;
                _ = Libc.Close(dup);
                stream.Dispose();
                Marshal.SetLastPInvokeError(errno);
                return null;
            }

            return stream;
        }

        private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        /// <summary>
        /// The next entry, "." and ".." skipped. <paramref name="strict"/>: a name that is not valid UTF-8 comes back
        /// decoded with U+FFFD for what is not (for matching only: it names another file) with NotUtf8 its bytes as text
        /// (\xNN for each that is not UTF-8); otherwise it is decoded with U+FFFD for what is not.
        /// </summary>
        private static unsafe (string Name, byte Type, ulong Inode, string? NotUtf8)? ReadEntry(SafeDirectoryStream stream, bool strict = false)
        {
            while (true)
            {
                byte* d = Libc.ReadDir(stream);
                if (d == null)
                {
                    return null;
                }

                byte* raw = d + Libc.DirentNameOffset;
                var bytes = new ReadOnlySpan<byte>(raw, System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(raw).Length);
                if (bytes.Length == 0 || (bytes.Length == 1 && bytes[0] == (byte)'.') || (bytes.Length == 2 && bytes[0] == (byte)'.' && bytes[1] == (byte)'.'))
                {
                    continue;
                }

                string name;
                string? invalid = null;
                try
                {
                    name = strict ? StrictUtf8.GetString(bytes) : System.Text.Encoding.UTF8.GetString(bytes);
                }
                catch (System.Text.DecoderFallbackException)
                {
                    invalid = Escaped(bytes);
                    name = System.Text.Encoding.UTF8.GetString(bytes);
                }

                return (name, d[Libc.DirentTypeOffset], *(ulong*)d, invalid); // d_ino is the first field of dirent64
            }
        }

        /// <summary>
        /// The bytes as text, decoded exactly; null when they are not valid UTF-8 (names the kernel gives: a name decoded
        /// with U+FFFD for each bad byte is another, real file's name, and a path built from it reaches that file).
        /// </summary>
        internal static string? Exact(ReadOnlySpan<byte> bytes)
        {
            try
            {
                return StrictUtf8.GetString(bytes);
            }
            catch (System.Text.DecoderFallbackException)
            {
                return null;
            }
        }

        /// <summary>A name's bytes as text: valid UTF-8 as it is, every other byte as \xNN (file names, attribute names, link targets).</summary>
        internal static string Escaped(ReadOnlySpan<byte> bytes)
        {
            var text = new System.Text.StringBuilder();
            int i = 0;
            while (i < bytes.Length)
            {
                System.Buffers.OperationStatus status = System.Text.Rune.DecodeFromUtf8(bytes[i..], out System.Text.Rune rune, out int used);
                if (status == System.Buffers.OperationStatus.Done)
                {
                    text.Append(rune.ToString());
                    i += used;
                }
                else
                {
                    text.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{bytes[i]:x2}");
                    i++;
                }
            }

            return text.ToString();
        }

        private EntryType Classify(byte type, string name) => type switch
        {
            Libc.DT_REG => EntryType.File,
            Libc.DT_DIR => EntryType.Directory,
            Libc.DT_LNK => EntryType.SymbolicLink,
            Libc.DT_UNKNOWN => FileStatus.OfAtCached(Handle, name) is FileStatus st ? st.Type : EntryType.Other, // cached: the entry may be the mount point of a filesystem that no longer answers
            _ => EntryType.Other,
        };
    }
}
