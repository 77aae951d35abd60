namespace Btrfs.Kernel
{
    using System;
    using System.Collections.Generic;
    using System.Text;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>Extended attributes of an open file (flistxattr, fgetxattr, fsetxattr, fremovexattr); a value that grows while it is read is read again.</summary>
    internal static class Xattrs
    {
        private const int Attempts = 4;

        private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        /// <summary>The names; empty where the filesystem has none (EOPNOTSUPP).</summary>
        internal static unsafe List<string> List(SafeFileDescriptor fd, string path)
        {
            var names = new List<string>();
            for (int attempt = 0; attempt < Attempts; attempt++)
            {
                nint size = Libc.FListXattr(fd, null, 0);
                if (size < 0)
                {
                    return Errno.Last == Errno.EOPNOTSUPP ? names : throw Errno.Failure("flistxattr", path, "Cannot list the extended attributes of");
                }

                if (size == 0)
                {
                    return names;
                }

                byte[] buffer = new byte[size];
                fixed (byte* b = buffer)
                {
                    size = Libc.FListXattr(fd, b, (nuint)buffer.Length);
                }

                if (size < 0)
                {
                    if (Errno.Last == Errno.ERANGE)
                    {
                        continue; // grew meanwhile
                    }

                    throw Errno.Failure("flistxattr", path, "Cannot list the extended attributes of");
                }

                // Each name exactly, or a refusal: a name decoded with U+FFFD for its bad bytes names no attribute, and
                // the copy would go on without it (a silent loss).
                int start = 0;
                for (int i = 0; i < size; i++)
                {
                    if (buffer[i] == 0)
                    {
                        if (i > start)
                        {
                            names.Add(StrictName(buffer.AsSpan(start, i - start), path));
                        }

                        start = i + 1;
                    }
                }

                return names;
            }

            throw new FileOperationException(FileErrorKind.IOError, Errno.ERANGE, "flistxattr", path, $"Cannot list the extended attributes of '{path}': they keep changing. The original is unchanged.");
        }

        /// <summary>An attribute's name, decoded exactly; one that is not valid UTF-8 is refused (NameNotUtf8).</summary>
        private static string StrictName(ReadOnlySpan<byte> name, string path)
        {
            try
            {
                return Strict.GetString(name);
            }
            catch (DecoderFallbackException)
            {
                throw new FileOperationException(
                    FileErrorKind.NameNotUtf8,
                    Errno.EINVAL,
                    "flistxattr",
                    path,
                    $"Cannot copy the extended attributes of '{path}': the name of one ('{DirectoryListing.Escaped(name)}'; a byte that is not UTF-8 is written \\xNN) is not valid UTF-8, and this module passes on only names it can read exactly (it would be lost). Copy its value to a UTF-8 name and remove it (setfattr -x) first. The original is unchanged.");
            }
        }

        /// <summary>The value, or null when the file does not have it (ENODATA) or the filesystem has none (EOPNOTSUPP).</summary>
        internal static unsafe byte[]? Get(SafeFileDescriptor fd, string name, string path)
        {
            for (int attempt = 0; attempt < Attempts; attempt++)
            {
                nint size = Libc.FGetXattr(fd, name, null, 0);
                if (size < 0)
                {
                    return Errno.Last is Errno.ENODATA or Errno.EOPNOTSUPP ? null : throw Errno.Failure("fgetxattr", path, $"Cannot read the extended attribute '{name}' of");
                }

                byte[] value = new byte[size];
                fixed (byte* v = value)
                {
                    size = Libc.FGetXattr(fd, name, v, (nuint)value.Length);
                }

                if (size >= 0)
                {
                    return size == value.Length ? value : value[..(int)size];
                }

                if (Errno.Last is Errno.ENODATA)
                {
                    return null;
                }

                if (Errno.Last != Errno.ERANGE)
                {
                    throw Errno.Failure("fgetxattr", path, $"Cannot read the extended attribute '{name}' of");
                }
            }

            throw new FileOperationException(FileErrorKind.IOError, Errno.ERANGE, "fgetxattr", path, $"Cannot read the extended attribute '{name}' of '{path}': it keeps changing. The original is unchanged.");
        }

        /// <summary>A short text value (up to 255 bytes, NULs at the end dropped), or null when absent, empty or unreadable: for markers and properties, never for copying.</summary>
        internal static unsafe string? TryGetText(SafeFileDescriptor fd, string name)
        {
            byte* buffer = stackalloc byte[255];
            nint n = Libc.FGetXattr(fd, name, buffer, 255);
            return n <= 0 ? null : Encoding.UTF8.GetString(buffer, (int)n).TrimEnd('\0');
        }

        /// <summary>
        /// As <see cref="TryGetText"/>, for a file only named (an O_PATH descriptor, <see cref="Names.TryName"/>): read through
        /// /proc/self/fd, so the file itself is never opened (an open would break another process's lease on it).
        /// </summary>
        internal static unsafe string? TryGetTextOfNamed(SafeFileDescriptor named, string name)
        {
            byte* buffer = stackalloc byte[255];
            nint n = Libc.GetXattr("/proc/self/fd/" + named.Fd.ToString(System.Globalization.CultureInfo.InvariantCulture), name, buffer, 255);
            return n <= 0 ? null : Encoding.UTF8.GetString(buffer, (int)n).TrimEnd('\0');
        }

        /// <summary>Sets the value; the error names <paramref name="what"/> (e.g. "Cannot copy the extended attribute 'x' of").</summary>
        internal static unsafe void Set(SafeFileDescriptor fd, string name, ReadOnlySpan<byte> value, string path, string what, string? advice = null)
        {
            fixed (byte* v = value)
            {
                Errno.Check(Libc.FSetXattr(fd, name, v, (nuint)value.Length, 0), "fsetxattr", path, what, advice);
            }
        }

        /// <summary>Sets the value; false when the filesystem refuses it (the caller goes on without it).</summary>
        internal static unsafe bool TrySet(SafeFileDescriptor fd, string name, ReadOnlySpan<byte> value)
        {
            fixed (byte* v = value)
            {
                return Libc.FSetXattr(fd, name, v, (nuint)value.Length, 0) == 0;
            }
        }

        /// <summary>Removes the attribute if it is there; failures are ignored.</summary>
        internal static void TryRemove(SafeFileDescriptor fd, string name) => _ = Libc.FRemoveXattr(fd, name);
    }
}
