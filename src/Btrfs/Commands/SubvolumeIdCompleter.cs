namespace Btrfs.Commands
{
    using System;
    using System.Collections;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Linq;
    using System.Management.Automation;
    using System.Management.Automation.Language;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Tab completion for -Id of Measure-BtrfsSubvolume and Remove-BtrfsSubvolume: the subvolumes of the
    /// filesystem of -FileSystemPath (or of the current location), as Get-BtrfsSubvolume -All lists them
    /// (root), else those below that path; each shown with its path, or its path from the top level where
    /// no mount reaches it. Never throws: what cannot be listed completes nothing.
    /// </summary>
    public sealed class SubvolumeIdCompleter : IArgumentCompleter
    {
        /// <summary>At most this many completions (a filesystem of thousands of snapshots lists its first ones).</summary>
        internal const int Most = 500;

        /// <inheritdoc/>
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            try
            {
                string? path = Where(fakeBoundParameters, commandAst);
                return path is null ? Array.Empty<CompletionResult>() : Complete(path, wordToComplete ?? string.Empty);
            }
            catch (Exception e) when (e is FileOperationException or RuntimeException or InvalidOperationException or ArgumentException or NotSupportedException)
            {
                return Array.Empty<CompletionResult>();
            }
        }

        private static List<CompletionResult> Complete(string path, string word)
        {
            List<BtrfsSubvolumeInfo> found;
            try
            {
                found = SubvolumeLister.List(path, SubvolumeScope.All);
            }
            catch (FileOperationException)
            {
                found = SubvolumeLister.List(path, SubvolumeScope.Below); // not root: what this user can see
            }

            string prefix = word.Trim('\'', '"');
            var results = new List<CompletionResult>();
            foreach (BtrfsSubvolumeInfo s in found.Where(s => s.Id != BtrfsInspect.TopLevelId).OrderBy(s => s.Id))
            {
                string id = s.Id.ToString(CultureInfo.InvariantCulture);
                if (!id.StartsWith(prefix, StringComparison.Ordinal))
                {
                    continue;
                }

                string where = s.Path ?? (s.TopLevelPath is { } top ? top + $" ({BtrfsSubvolumeInfo.WhyNoPath(top)})" : s.Name);
                string kind = s.IsSnapshot ? (s.IsReadOnly ? "read-only snapshot" : "snapshot") : "subvolume";
                results.Add(new CompletionResult(id, id + " " + where, CompletionResultType.ParameterValue, $"{kind} {id}: {where}"));
                if (results.Count == Most)
                {
                    break;
                }
            }

            return results;
        }

        /// <summary>-FileSystemPath as typed (a file system path, relative to the current location), else the current location.</summary>
        private static string? Where(IDictionary bound, CommandAst? command)
        {
            // A completer runs on the pipeline's thread while the pipeline runs: the session state is reached
            // through a script block (SessionStateProxy refuses concurrent calls).
            // Given as something PowerShell does not evaluate for completion (an expression such as (Get-Item /)):
            // nothing to go on, rather than the current location's filesystem.
            bool given = command?.CommandElements.OfType<CommandParameterAst>().Any(p => "FileSystemPath".StartsWith(p.ParameterName, StringComparison.OrdinalIgnoreCase) && p.ParameterName.Length > 1) == true;
            if (given && bound?["FileSystemPath"] is not string)
            {
                return null;
            }

            string typed = bound?["FileSystemPath"] as string ?? string.Empty;
            var resolve = ScriptBlock.Create(
                "param($p) if ($p) { $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($p) } " +
                "else { $ExecutionContext.SessionState.Path.CurrentFileSystemLocation.ProviderPath }");
            return resolve.Invoke(typed).FirstOrDefault()?.BaseObject as string;
        }
    }
}
