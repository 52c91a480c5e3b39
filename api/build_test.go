package api

import (
	"strings"
	"testing"
)

func TestBuildValidation(t *testing.T) {
	tests := []struct {
		name  string
		image string
		build BuildSpec
		want  string
	}{
		{"fine", "", BuildSpec{Git: GitSource{URL: "https://git.example.com/shop.git", Ref: "main", Dir: "web"}, Dockerfile: "docker/Dockerfile", Args: map[string]string{"VERSION": "1"}, Target: "prod"}, ""},
		{"image too", "nginx:1", BuildSpec{Git: GitSource{URL: "https://git.example.com/shop.git"}}, "set image or build, not both"},
		{"no url", "", BuildSpec{}, "spec.build.git.url"},
		{"a local path", "", BuildSpec{Git: GitSource{URL: "/srv/git/shop"}}, "http(s):// or ssh://"},
		{"file url", "", BuildSpec{Git: GitSource{URL: "file:///etc"}}, "http(s):// or ssh://"},
		{"ssh url", "", BuildSpec{Git: GitSource{URL: "ssh://git@git.example.com:2222/shop/web.git", SecretRef: "deploy-key"}}, ""},
		{"scp-like address", "", BuildSpec{Git: GitSource{URL: "git@github.com:shop/web.git", SecretRef: "deploy-key"}}, ""},
		{"ssh url with a password", "", BuildSpec{Git: GitSource{URL: "ssh://git:hunter2@git.example.com/x.git"}}, "secretRef"},
		{"ext transport", "", BuildSpec{Git: GitSource{URL: "ext::sh -c touch% /tmp/pwned"}}, "spec.build.git.url"},
		{"credentials in the url", "", BuildSpec{Git: GitSource{URL: "https://user:hunter2@git.example.com/x.git"}}, "secretRef"},
		{"ref with an option", "", BuildSpec{Git: GitSource{URL: "https://g.example/x.git", Ref: "--upload-pack=x"}}, "spec.build.git.ref"},
		{"dir out of the repository", "", BuildSpec{Git: GitSource{URL: "https://g.example/x.git", Dir: "../x"}}, "spec.build.git.dir"},
		{"absolute dockerfile", "", BuildSpec{Git: GitSource{URL: "https://g.example/x.git"}, Dockerfile: "/etc/passwd"}, "spec.build.dockerfile"},
		{"bad arg", "", BuildSpec{Git: GitSource{URL: "https://g.example/x.git"}, Args: map[string]string{"1X": "y"}}, "spec.build.args[1X]"},
		{"tiny memory", "", BuildSpec{Git: GitSource{URL: "https://g.example/x.git"}, Memory: "1Mi"}, "spec.build.memory"},
		{"uploaded context", "", BuildSpec{Upload: &UploadSource{Digest: "sha256:" + strings.Repeat("ab", 32)}, Target: "prod"}, ""},
		{"upload and git", "", BuildSpec{Upload: &UploadSource{Digest: "sha256:" + strings.Repeat("ab", 32)}, Git: GitSource{URL: "https://g.example/x.git"}}, "not both"},
		{"upload without a digest", "", BuildSpec{Upload: &UploadSource{}}, "spec.build.upload.digest"},
		{"upload with an upper-case digest", "", BuildSpec{Upload: &UploadSource{Digest: "sha256:" + strings.Repeat("AB", 32)}}, "spec.build.upload.digest"},
		{"upload with a webhook", "", BuildSpec{Upload: &UploadSource{Digest: "sha256:" + strings.Repeat("ab", 32)}, Webhook: &WebhookSpec{SecretRef: "hook"}}, "spec.build.webhook"},
		{"upload with a bad dockerfile", "", BuildSpec{Upload: &UploadSource{Digest: "sha256:" + strings.Repeat("ab", 32)}, Dockerfile: "../Dockerfile"}, "spec.build.dockerfile"},
		{"long deadline", "", BuildSpec{Git: GitSource{URL: "https://g.example/x.git"}, Deadline: Duration{Duration: 48 * 3600e9}}, "spec.build.deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.build
			s := &Service{Metadata: ObjectMeta{Project: "p", Name: "web"}, Spec: ServiceSpec{Image: tt.image, Build: &b}}
			s.Default()
			errs := s.Validate()
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("refused: %v", errs)
			case tt.want != "" && !strings.Contains(errs.Error(), tt.want):
				t.Errorf("errors %v, want one saying %q", errs, tt.want)
			}
			if strings.Contains(errs.Error(), "hunter2") {
				t.Errorf("an error quotes the password: %v", errs)
			}
		})
	}
	s := &Service{Spec: ServiceSpec{Build: &BuildSpec{Git: GitSource{URL: "https://g.example/x.git"}}}}
	s.Default()
	if s.Spec.ImagePullPolicy != PullNever || s.Spec.Build.Dockerfile != "Dockerfile" || s.Spec.Build.Deadline.Duration != DefaultBuildDeadline || s.RunImage() != "" {
		t.Errorf("defaults: %+v %+v run %q", s.Spec, s.Spec.Build, s.RunImage())
	}
}
