namespace Btrfs.Kernel
{
    using System;
    using System.Collections.Generic;
    using System.Threading;

    /// <summary>Look-ups that may meet a mount that does not answer (a hung FUSE or NFS mount), bounded in time.</summary>
    internal static class Bounded
    {
        /// <summary>
        /// Runs <paramref name="work"/> on a thread of its own and waits at most <paramref name="timeout"/>;
        /// <paramref name="timedOut"/> when it did not finish (the thread is left waiting in the kernel).
        /// </summary>
        internal static T? Run<T>(Func<T?> work, TimeSpan timeout, out bool timedOut)
            where T : class
        {
            T? result = null;
            bool abandoned = false;
            object gate = new();
            var worker = new Thread(
                () =>
                {
                    T? found = null;
                    try
                    {
                        found = work();
                    }
                    catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException or ObjectDisposedException or Btrfs.Core.FileOperationException)
                    {
                        // Nothing to return: the caller sees null.
                    }

                    lock (gate)
                    {
                        if (!abandoned)
                        {
                            result = found;
                            return;
                        }
                    }

                    // The caller gave up waiting: what came too late (descriptors of a namespace, say) is closed here,
                    // not left to the finalizer while it keeps that namespace's mounts busy.
                    (found as IDisposable)?.Dispose();
                },
                maxStackSize: 256 * 1024)
            {
                IsBackground = true,
                Name = "Btrfs bounded look-up",
            };
            worker.Start();
            bool finished = worker.Join(timeout);
            lock (gate)
            {
                // Finished in time, or it handed its result over just now.
                timedOut = !finished && result is null;
                abandoned = timedOut;
                return result;
            }
        }

        /// <summary>Each path's status (statx; a final link followed or not), or null when the look-ups took longer than <paramref name="timeout"/>.</summary>
        internal static Dictionary<string, FileStatus?>? Statuses(IReadOnlyCollection<string> paths, bool followLinks, TimeSpan timeout)
        {
            if (paths.Count == 0)
            {
                return new Dictionary<string, FileStatus?>(StringComparer.Ordinal);
            }

            return Run(
                () =>
                {
                    var found = new Dictionary<string, FileStatus?>(StringComparer.Ordinal);
                    foreach (string path in paths)
                    {
                        found[path] = FileStatus.OfPath(path, followLinks);
                    }

                    return found;
                },
                timeout,
                out _);
        }
    }
}
