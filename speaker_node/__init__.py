"""The hamlet loudspeaker node (issue #4): not built yet."""
