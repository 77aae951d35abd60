namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Runtime.InteropServices;
    using System.Text;
    using Btrfs.Interop;

    /// <summary>
    /// Carries an inode's identity-free metadata to its copy: owner and group, mode, extended
    /// attributes (POSIX ACLs, security labels and capabilities included), usage flags, and access
    /// and modification times, in the order that keeps each one (chown clears setuid bits and file
    /// capabilities, so it comes first; times come last).
    /// </summary>
    internal static class MetadataCopy
    {
        internal static unsafe void Copy(RegularFile source, SafeFileDescriptor target, string targetLabel, InodeFlags targetFlags, InodeFlags sourceFlags, bool includeXattrs = true, IReadOnlyCollection<string>? skipXattrs = null)
        {
            FileStatus st = source.Status;
            if (Libc.FChown(target, st.Uid, st.Gid) != 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fchown", source.Path, "Cannot give the copy the owner and group of", "Only root can rewrite a file owned by someone else. The original is unchanged.");
            }

            if (Libc.FChmod(target, st.Permissions) != 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fchmod", source.Path, "Cannot give the copy the mode of", "The original is unchanged.");
            }

            foreach (string name in includeXattrs ? ListXattrs(source) : new List<string>())
            {
                if (skipXattrs?.Contains(name) == true)
                {
                    continue;
                }

                byte[]? value = GetXattr(source, name);
                if (value is null)
                {
                    continue; // removed meanwhile
                }

                fixed (byte* v = value)
                {
                    if (Libc.FSetXattr(target, name, v, (nuint)value.Length, 0) != 0)
                    {
                        throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fsetxattr", source.Path, $"Cannot copy the extended attribute '{name}' of", "The original is unchanged.");
                    }
                }
            }

            InodeFlags carried = (targetFlags & ~InodeFlagsIo.Carried) | (sourceFlags & InodeFlagsIo.Carried);
            if (carried != targetFlags)
            {
                InodeFlagsIo.Set(target, targetLabel, carried);
            }

            Libc.TimeSpec* times = stackalloc Libc.TimeSpec[2];
            times[0] = new Libc.TimeSpec { Seconds = st.AccessTime.Seconds, Nanoseconds = st.AccessTime.Nanoseconds };
            times[1] = new Libc.TimeSpec { Seconds = st.ModifyTime.Seconds, Nanoseconds = st.ModifyTime.Nanoseconds };
            if (Libc.FUtimens(target, times) != 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "futimens", source.Path, "Cannot give the copy the timestamps of", "The original is unchanged.");
            }
        }

        private static unsafe List<string> ListXattrs(RegularFile source)
        {
            var names = new List<string>();
            for (int attempt = 0; attempt < 4; attempt++)
            {
                nint size = Libc.FListXattr(source.Handle, null, 0);
                if (size < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno is Libc.EOPNOTSUPP)
                    {
                        return names;
                    }

                    throw FileOperationException.FromErrno(errno, "flistxattr", source.Path, "Cannot list the extended attributes of");
                }

                if (size == 0)
                {
                    return names;
                }

                byte[] buffer = new byte[size];
                fixed (byte* b = buffer)
                {
                    size = Libc.FListXattr(source.Handle, b, (nuint)buffer.Length);
                }

                if (size < 0 && Marshal.GetLastPInvokeError() == Libc.ERANGE)
                {
                    continue; // grew meanwhile
                }

                if (size < 0)
                {
                    throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "flistxattr", source.Path, "Cannot list the extended attributes of");
                }

                foreach (string n in Encoding.UTF8.GetString(buffer, 0, (int)size).Split('\0', StringSplitOptions.RemoveEmptyEntries))
                {
                    names.Add(n);
                }

                return names;
            }

            throw new FileOperationException(FileErrorKind.IOError, Libc.ERANGE, "flistxattr", source.Path, $"Cannot list the extended attributes of '{source.Path}': they keep changing. The original is unchanged.");
        }

        private static unsafe byte[]? GetXattr(RegularFile source, string name)
        {
            for (int attempt = 0; attempt < 4; attempt++)
            {
                nint size = Libc.FGetXattr(source.Handle, name, null, 0);
                if (size < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Libc.ENODATA)
                    {
                        return null;
                    }

                    throw FileOperationException.FromErrno(errno, "fgetxattr", source.Path, $"Cannot read the extended attribute '{name}' of");
                }

                byte[] value = new byte[size];
                fixed (byte* v = value)
                {
                    size = Libc.FGetXattr(source.Handle, name, v, (nuint)value.Length);
                }

                if (size >= 0)
                {
                    return size == value.Length ? value : value[..(int)size];
                }

                if (Marshal.GetLastPInvokeError() != Libc.ERANGE)
                {
                    throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fgetxattr", source.Path, $"Cannot read the extended attribute '{name}' of");
                }
            }

            throw new FileOperationException(FileErrorKind.IOError, Libc.ERANGE, "fgetxattr", source.Path, $"Cannot read the extended attribute '{name}' of '{source.Path}': it keeps changing. The original is unchanged.");
        }
    }
}
