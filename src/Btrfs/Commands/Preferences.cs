namespace Btrfs.Commands
{
    using System;
    using System.Management.Automation;
    using System.Management.Automation.Host;
    using System.Runtime.CompilerServices;
    using Btrfs.Core;

    /// <summary>-WhatIf and -Confirm as a cmdlet sees them: given to it, or inherited from the script that called it.</summary>
    internal static class Preferences
    {
        /// <summary>-WhatIf given to the cmdlet, or to its caller ($WhatIfPreference), as ShouldProcess itself sees it.</summary>
        internal static bool WhatIfInEffect(PSCmdlet cmdlet) => cmdlet.MyInvocation.BoundParameters.TryGetValue("WhatIf", out object? w)
            ? w is SwitchParameter { IsPresent: true }
            : LanguagePrimitives.IsTrue(cmdlet.GetVariableValue("WhatIfPreference"));

        /// <summary>
        /// An error, warning or verbose message the cmdlet writes ends the pipeline or waits for an answer
        /// (-ErrorAction, -WarningAction, or the preference variables, Stop or Inquire).
        /// </summary>
        internal static bool MessagesStop(PSCmdlet cmdlet) =>
            Stops(cmdlet.MyInvocation.BoundParameters.TryGetValue("ErrorAction", out object? e) ? e : cmdlet.GetVariableValue("ErrorActionPreference"))
            || Stops(cmdlet.MyInvocation.BoundParameters.TryGetValue("WarningAction", out object? w) ? w : cmdlet.GetVariableValue("WarningPreference"))
            || (!cmdlet.MyInvocation.BoundParameters.ContainsKey("Verbose") && Stops(cmdlet.GetVariableValue("VerbosePreference"))); // -Verbose makes it Continue

        private static bool Stops(object? preference) =>
            LanguagePrimitives.TryConvertTo(preference, out ActionPreference p) && p is ActionPreference.Stop or ActionPreference.Inquire or ActionPreference.Suspend;

        /// <summary>-Confirm:$false given to the cmdlet, or $ConfirmPreference 'None' from a caller given -Confirm:$false: questions asked with ShouldContinue are skipped.</summary>
        internal static bool ConfirmSwitchedOff(PSCmdlet cmdlet) => cmdlet.MyInvocation.BoundParameters.TryGetValue("Confirm", out object? c)
            ? c is SwitchParameter { IsPresent: false }
            : cmdlet.GetVariableValue("ConfirmPreference") is ConfirmImpact.None;

        /// <summary>
        /// ShouldProcess, where a host that cannot ask (see <see cref="ShouldContinue"/>) is a
        /// ConfirmationNotPossible error for <paramref name="target"/> instead of an unexplained exception.
        /// </summary>
        internal static bool ShouldProcess(PSCmdlet cmdlet, string target, string action) =>
            Asked(cmdlet, () => cmdlet.ShouldProcess(target, action), target, "-Confirm:$false");

        /// <summary>
        /// ShouldContinue, where a host that cannot ask is a ConfirmationNotPossible error for
        /// <paramref name="target"/> that says how to answer in advance (<paramref name="answer"/>: the
        /// parameters that skip the question): pwsh's console host throws NullReferenceException when its
        /// input is redirected and at its end (pwsh -c or -File from cron, a systemd unit, a CI job), and
        /// PSInvalidOperationException with -NonInteractive; a host without a user interface throws
        /// HostException, NotSupportedException or NotImplementedException. Once a question could not be
        /// asked, the rest of the command's questions fail at once (nothing is printed, nothing is
        /// prepared again). A stop at the prompt (Ctrl+C: PipelineStoppedException, or a host's
        /// PromptingException of category OperationStopped) stops the command.
        /// </summary>
        internal static bool ShouldContinue(PSCmdlet cmdlet, string target, string query, string caption, string answer) =>
            Asked(cmdlet, () => cmdlet.ShouldContinue(query, caption), target, answer);

        /// <summary>Commands (this invocation of a cmdlet) whose host could not ask, with the host's exception.</summary>
        private static readonly ConditionalWeakTable<PSCmdlet, Exception> CannotAsk = new();

        private static bool Asked(PSCmdlet cmdlet, Func<bool> ask, string target, string answer)
        {
            if (!CannotAsk.TryGetValue(cmdlet, out Exception? failed))
            {
                try
                {
                    return ask();
                }
                catch (Exception ex) when (!cmdlet.Stopping && CannotPrompt(cmdlet, ex))
                {
                    failed = ex;
                    CannotAsk.AddOrUpdate(cmdlet, ex);
                }
            }

            // A fixed reason: the host's own message can quote the first item's question.
            string why = failed switch
            {
                NullReferenceException => "its input is at its end",
                PSInvalidOperationException => "it runs -NonInteractive",
                RemoteException remote => RemoteFailure(remote) switch
                {
                    nameof(NullReferenceException) => "it runs through remoting, and the input of the PowerShell that called it is at its end",
                    nameof(PSInvalidOperationException) => "it runs through remoting, and the PowerShell that called it runs -NonInteractive",
                    _ => "it runs through remoting, and the host of the PowerShell that called it has no way to ask",
                },
                _ => "its host has no way to ask",
            };
            throw new FileOperationException(
                FileErrorKind.ConfirmationNotPossible,
                0,
                "confirm",
                target,
                $"Cannot ask for confirmation about '{target}': this PowerShell cannot prompt ({why}). Nothing was changed. Add {answer} to go ahead without being asked, or -WhatIf to see what would be done.",
                failed);
        }

        /// <summary>
        /// What a host throws when it cannot ask at all (not a stop at the prompt). Through remoting the
        /// question goes to the host of the PowerShell that called Invoke-Command, and its failure comes back
        /// as a RemoteException (RemoteHostExecutionException) naming the client's exception by type: the
        /// same exceptions there (a client console host whose input is at its end throws
        /// NullReferenceException there) count the same.
        /// </summary>
        private static bool CannotPrompt(PSCmdlet cmdlet, Exception ex) => ex switch
        {
            PromptingException { ErrorRecord.CategoryInfo.Category: ErrorCategory.OperationStopped } => false,
            NullReferenceException => Console.IsInputRedirected && cmdlet.Host?.Name == "ConsoleHost", // pwsh's console read the end of its input; otherwise a bug, not this
            PSInvalidOperationException or HostException or NotSupportedException or NotImplementedException => true,
            RemoteException remote => remote.ErrorRecord?.CategoryInfo.Category is not ErrorCategory.OperationStopped
                && RemoteFailure(remote) is nameof(NullReferenceException) or nameof(PSInvalidOperationException) or nameof(HostException) or nameof(NotSupportedException) or nameof(NotImplementedException),
            _ => false,
        };

        /// <summary>
        /// The short type name of the exception a remote client's host threw: the serialized exception's
        /// first type name ("Deserialized." and the namespace taken off) where it came with one (a client
        /// whose input is at its end), else its error record's reason (a client that runs -NonInteractive
        /// sends the record alone). A PromptingException (a stop at the client's prompt) is none of those
        /// <see cref="CannotPrompt"/> takes.
        /// </summary>
        private static string? RemoteFailure(RemoteException remote)
        {
            string? type = remote.SerializedRemoteException?.TypeNames is { Count: > 0 } names ? names[0] : remote.ErrorRecord?.CategoryInfo.Reason;
            return type?.Substring(type.LastIndexOf('.') + 1);
        }
    }
}
