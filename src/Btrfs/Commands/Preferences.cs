namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
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
            ErrorsStop(cmdlet)
            || Stops(cmdlet.MyInvocation.BoundParameters.TryGetValue("WarningAction", out object? w) ? w : cmdlet.GetVariableValue("WarningPreference"))
            || (!cmdlet.MyInvocation.BoundParameters.ContainsKey("Verbose") && Stops(cmdlet.GetVariableValue("VerbosePreference"))); // -Verbose makes it Continue

        /// <summary>A verbose message the cmdlet writes is shown or kept (-Verbose, or $VerbosePreference other than SilentlyContinue and Ignore).</summary>
        internal static bool VerboseWanted(PSCmdlet cmdlet) => cmdlet.MyInvocation.BoundParameters.TryGetValue("Verbose", out object? v)
            ? v is SwitchParameter { IsPresent: true }
            : LanguagePrimitives.TryConvertTo(cmdlet.GetVariableValue("VerbosePreference"), out ActionPreference p) && p is not (ActionPreference.SilentlyContinue or ActionPreference.Ignore);

        /// <summary>An error the cmdlet writes ends the pipeline or waits for an answer (-ErrorAction or $ErrorActionPreference Stop or Inquire).</summary>
        internal static bool ErrorsStop(PSCmdlet cmdlet) =>
            Stops(cmdlet.MyInvocation.BoundParameters.TryGetValue("ErrorAction", out object? e) ? e : cmdlet.GetVariableValue("ErrorActionPreference"));

        /// <summary>
        /// WriteError, where an error that stops the command closes its progress bars first (after it, the command
        /// may write no record, and the host would show them to the end of the script). Every error of a cmdlet of
        /// this module goes through here.
        /// </summary>
        internal static void WriteError(PSCmdlet cmdlet, ErrorRecord error)
        {
            if (ErrorsStop(cmdlet))
            {
                ProgressBar.CompleteAll(cmdlet);
            }

            cmdlet.WriteError(error);
        }

        /// <summary>WriteWarning, where a warning that stops the command (-WarningAction or $WarningPreference Stop or Inquire) closes its progress bars first.</summary>
        internal static void WriteWarning(PSCmdlet cmdlet, string text)
        {
            if (Stops(cmdlet.MyInvocation.BoundParameters.TryGetValue("WarningAction", out object? w) ? w : cmdlet.GetVariableValue("WarningPreference")))
            {
                ProgressBar.CompleteAll(cmdlet);
            }

            cmdlet.WriteWarning(text);
        }

        private static bool Stops(object? preference) =>
            LanguagePrimitives.TryConvertTo(preference, out ActionPreference p) && p is ActionPreference.Stop or ActionPreference.Inquire or ActionPreference.Suspend;

        /// <summary>-Confirm:$false given to the cmdlet, or $ConfirmPreference 'None' from a caller given -Confirm:$false: questions asked with ShouldContinue are skipped.</summary>
        internal static bool ConfirmSwitchedOff(PSCmdlet cmdlet) => cmdlet.MyInvocation.BoundParameters.TryGetValue("Confirm", out object? c)
            ? c is SwitchParameter { IsPresent: false }
            : LanguagePrimitives.TryConvertTo(cmdlet.GetVariableValue("ConfirmPreference"), out ConfirmImpact p) && p == ConfirmImpact.None; // also set as text ('None') in a script's scope

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
        /// PromptingException of category OperationStopped) stops the command. Through remoting, the same
        /// failures of the host of the PowerShell that called Invoke-Command count the same.
        /// </summary>
        internal static bool ShouldContinue(PSCmdlet cmdlet, string target, string query, string caption, string answer) =>
            Asked(cmdlet, () => cmdlet.ShouldContinue(query, caption), target, answer);

        /// <summary>
        /// Commands (this invocation of a cmdlet) whose host could not ask, with the host's exception, per kind of question
        /// (its answer): a ShouldProcess that would not prompt at all still goes on after a ShouldContinue could not be
        /// asked, and every item that fails gives the same advice. (Before: the first file was told "-Force (or
        /// -Confirm:$false)", the rest "-Confirm:$false"; a hostile review.)
        /// </summary>
        private static readonly ConditionalWeakTable<PSCmdlet, Dictionary<string, Exception>> CannotAsk = new();

        private static bool Asked(PSCmdlet cmdlet, Func<bool> ask, string target, string answer)
        {
            Dictionary<string, Exception> failures = CannotAsk.GetOrCreateValue(cmdlet);
            if (!failures.TryGetValue(answer, out Exception? failed))
            {
                try
                {
                    return ask();
                }
                catch (Exception ex) when (!cmdlet.Stopping && CannotPrompt(cmdlet, ex))
                {
                    failed = ex;
                    failures[answer] = ex;
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
        /// as a RemoteException naming the client's exception by type: the same exceptions there count the
        /// same (a NullReferenceException only from the client's console host, as here).
        /// </summary>
        private static bool CannotPrompt(PSCmdlet cmdlet, Exception ex) => ex switch
        {
            PromptingException { ErrorRecord.CategoryInfo.Category: ErrorCategory.OperationStopped } => false,
            NullReferenceException => Console.IsInputRedirected && cmdlet.Host?.Name == "ConsoleHost", // pwsh's console read the end of its input; otherwise a bug, not this
            PSInvalidOperationException or HostException or NotSupportedException or NotImplementedException => true,
            RemoteException remote => remote.ErrorRecord?.CategoryInfo.Category is not ErrorCategory.OperationStopped && RemoteFailure(remote) is not null,
            _ => false,
        };

        /// <summary>Short names of the exceptions a host throws when it cannot ask (see <see cref="CannotPrompt"/>).</summary>
        private static readonly string[] CannotAskTypes =
        {
            nameof(NullReferenceException), nameof(PSInvalidOperationException), nameof(HostException), nameof(NotSupportedException), nameof(NotImplementedException),
        };

        /// <summary>
        /// Which of <see cref="CannotAskTypes"/> a remote client's host threw, or null: any of the serialized
        /// exception's type names (its class and base classes, "Deserialized." and the namespace taken off)
        /// where it came with them (a client whose input is at its end), else its error record's reason (a
        /// client that runs -NonInteractive sends the record alone). A NullReferenceException counts only from
        /// the client's console host (its stack names it); a PromptingException (a stop at the client's prompt)
        /// is none of these.
        /// </summary>
        private static string? RemoteFailure(RemoteException remote)
        {
            PSObject? serialized = remote.SerializedRemoteException;
            System.Collections.Generic.IEnumerable<string> types = serialized?.TypeNames is { Count: > 0 } names
                ? names
                : new[] { remote.ErrorRecord?.CategoryInfo.Reason ?? string.Empty };
            foreach (string type in types)
            {
                string name = type.Substring(type.LastIndexOf('.') + 1);
                if (Array.IndexOf(CannotAskTypes, name) < 0)
                {
                    continue;
                }

                if (name == nameof(NullReferenceException)
                    && !(serialized?.Properties["StackTrace"]?.Value is string stack && stack.Contains("ConsoleHostUserInterface", StringComparison.Ordinal)))
                {
                    return null; // a bug in another host, not a host that cannot ask
                }

                return name;
            }

            return null;
        }
    }
}
