// The storyboard page's script: send the forms and the microphone's recordings with fetch,
// follow the render, and show the new cut when it is done. Plain JavaScript, no build step.
(function () {
  "use strict";
  var root = document.getElementById("studio");
  if (!root) {
    return;
  }
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var recording = null;
  var sending = false;
  var cardsStale = false;
  var polling = false;
  var awaitingCut = false;

  function say(element, text, bad) {
    var card = element && element.closest(".card, .approval, .character");
    var boxes = [document.getElementById("notice")];
    if (card) {
      boxes.push(card.querySelector("[data-message]"));
    }
    boxes.forEach(function (box) {
      if (!box) {
        return;
      }
      box.textContent = text;
      box.classList.toggle("bad", Boolean(bad));
    });
  }

  function post(url, body, contentType) {
    var headers = { "Accept": "application/json", "X-CSRF-Token": csrf };
    if (contentType) {
      headers["Content-Type"] = contentType;
    }
    return fetch(url, { method: "POST", body: body, headers: headers, credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () {
          return { error: response.status + " " + response.statusText };
        }).then(function (answer) {
          if (!response.ok) {
            throw new Error(answer.error || response.statusText);
          }
          return answer;
        });
      });
  }

  function accepted(element, answer) {
    say(element, answer.message);
    if (answer.character) {
      refreshCharacters(function (panel) {
        var shown = panel.querySelector('[data-character="' + CSS.escape(answer.character) + '"]');
        say(shown && shown.querySelector("[data-message]"), answer.message);
      });
    }
    if (answer.approval) {
      refreshApproval();
    } else if (answer.render) {
      awaitingCut = true;
      follow();
    } else {
      refreshCards();
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-action]")) {
      return;
    }
    event.preventDefault();
    say(form, "sending…");
    post(form.action, new FormData(form, event.submitter)).then(
      function (answer) { accepted(form, answer); },
      function (error) {
        say(form, error.message, true);
        if (form.matches("[data-approval]")) {
          refreshApproval();
        }
      }
    );
  });

  function startRecording(button) {
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      say(button, "this browser cannot record here (it needs https or localhost): upload a file", true);
      return;
    }
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      var recorder = new MediaRecorder(stream);
      var chunks = [];
      recording = { recorder: recorder, button: button, label: button.textContent };
      recorder.ondataavailable = function (event) {
        if (event.data.size) {
          chunks.push(event.data);
        }
      };
      recorder.onstop = function () {
        stream.getTracks().forEach(function (track) { track.stop(); });
        button.textContent = recording.label;
        button.classList.remove("recording");
        recording = null;
        sending = true;
        var blob = new Blob(chunks, { type: recorder.mimeType || "application/octet-stream" });
        say(button, "sending the recording…");
        post(button.dataset.record, blob, blob.type || "application/octet-stream").then(
          function (answer) { accepted(button, answer); sent(); },
          function (error) { say(button, error.message, true); sent(); }
        );
      };
      recorder.start();
      button.textContent = "Stop and send";
      button.classList.add("recording");
      say(button, "recording… click again to stop");
    }, function (error) {
      say(button, "no microphone: " + error.message, true);
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-record]");
    if (!button) {
      return;
    }
    if (recording && recording.button === button) {
      recording.recorder.stop();
    } else if (recording) {
      say(button, "another recording is running: stop it first", true);
    } else {
      startRecording(button);
    }
  });

  function describe(job) {
    var line = document.createElement("span");
    line.className = job.state;
    var text = "#" + job.id + " " + job.state;
    if (job.detail) {
      text += " (" + job.detail + ")";
    }
    text += ": " + job.reason;
    if (job.state === "running" && job.started_at) {
      text += ", " + Math.round((Date.now() - Date.parse(job.started_at)) / 1000) + " s";
    }
    if (job.error) {
      text += ": " + job.error;
    }
    line.textContent = text;
    if (job.flow_run_url) {
      var link = document.createElement("a");
      link.href = job.flow_run_url;
      link.textContent = " flow run";
      line.appendChild(link);
    }
    return line;
  }

  function show(status) {
    document.getElementById("renderer").textContent = status.renderer_label;
    var box = document.getElementById("render-status");
    if (!status.jobs.length) {
      return;
    }
    box.replaceChildren();
    status.jobs.forEach(function (job, index) {
      if (index) {
        box.appendChild(document.createTextNode(" · "));
      }
      box.appendChild(describe(job));
    });
  }

  function follow() {
    if (polling) {
      return;
    }
    polling = true;
    fetch(root.dataset.renderUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (status) {
        polling = false;
        show(status);
        if (status.busy) {
          awaitingCut = true;
          setTimeout(follow, 1500);
        } else if (awaitingCut) {
          awaitingCut = false;
          showNewCut();
        }
      }, function () {
        polling = false;
        setTimeout(follow, 5000);
      });
  }

  function showNewCut() {
    var video = document.getElementById("video");
    video.src = video.dataset.src + "&v=" + Date.now();
    video.hidden = false;
    video.load();
    refreshCards();
  }

  function sent() {
    sending = false;
    if (cardsStale) {
      refreshCards();
    }
  }

  function refreshCards() {
    cardsStale = Boolean(recording || sending);
    if (cardsStale) {  // not under a recording's button: once it is sent
      refreshCharacters();
      return;
    }
    fetch(root.dataset.cardsUrl, { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) { document.getElementById("cards").innerHTML = html; });
    refreshCharacters();
  }

  function refreshCharacters(then) {
    var panel = document.getElementById("characters");
    fetch(panel.dataset.charactersUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(); })
      .then(function (html) {
        panel.innerHTML = html;
        if (then) {
          then(panel);
        }
      })
      .catch(function () {});
  }

  // The images a paused run waits on: the panel is put in place when another round (or
  // none) waits, never while the same one does, so nothing typed into it is lost.
  function approvalKey(element) {
    var section = element.querySelector("[data-approval-key]");
    return section ? section.dataset.approvalKey : "";
  }

  function refreshApproval() {
    var panel = document.getElementById("approval");
    if (!panel) {
      return;
    }
    fetch(panel.dataset.approvalUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(); })
      .then(function (html) {
        var fresh = document.createElement("template");
        fresh.innerHTML = html;
        if (approvalKey(fresh.content) !== approvalKey(panel)) {
          panel.replaceChildren(fresh.content);
        }
      })
      .catch(function () {});
  }

  function watchApproval() {
    if (!document.hidden) {
      refreshApproval();
    }
    setTimeout(watchApproval, 5000);
  }

  follow();
  setTimeout(watchApproval, 5000);
}());
